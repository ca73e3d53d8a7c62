import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../gateway.js';
import { localApiKeyPath } from '../crypto/local-api-key.js';
import { createLogger, type LogFormat, logFormats, logProcessWarnings, resolveFormat } from '../log.js';
import { configCredentials } from '../config/logged-credentials.js';
import { demoFilesFolder } from '../config/load.js';
import type { VirtualUpstreamConfig } from '../upstream/config.js';
import { ensureDemoFiles } from './demo-files.js';
import { configForCommand } from './load-config.js';

/** This checkout's CLI entry point: a desktop client launches it by absolute path, never by a registry name. */
const cliEntry = fileURLToPath(new URL('../../../bin/portcullis.js', import.meta.url));

const cli = `node ${cliEntry}`;

/** How to get a token: from the dev identity, or from the configured IdP. */
function signIn(gateway: Gateway, embedded: boolean): string[] {
  const config = embedded ? '' : ' --config FILE';
  const dev = gateway.devIdentity;
  if (dev === undefined) return ['Sign in:', `  ${cli} login --gateway ${gateway.url}   (your OIDC provider), then use the connections below`, ''];
  const users = dev.users;
  return [
    'Sign in (dev identity: no OIDC issuer is configured; not for production):',
    users.length === 0
      ? '  no users yet: list some under identity.dev.users in the config (name: [groups])'
      : `  ${cli} login --dev ${users[0]}${config} --print    (users: ${users.map((u) => `${u} [${gateway.config.identity.dev.users[u]!.join(', ')}]`).join(', ')})`,
    '',
  ];
}

/** What the embedded defaults serve, for the banner's first line. */
function embeddedDemo(gateway: Gateway): string {
  const files = gateway.config.connections.has('files') ? ', @modelcontextprotocol/server-filesystem over ./data/demo-files' : '';
  return ` (embedded defaults: the demo servers @modelcontextprotocol/server-everything${files}, and a virtual server over them)`;
}

/** A virtual server's line under Next: where it is, and the names its members' items get there. */
function virtualServerLines(gateway: Gateway, name: string, upstream: VirtualUpstreamConfig, embedded: boolean): string[] {
  const members = upstream.members.map((m) => (m.prefix === '' ? m.connection : `${m.connection} (as ${m.prefix}…)`));
  return [
    `  virtual server: ${gateway.url}/mcp/${name} serves ${members.join(', ')} in one list`,
    `                  (or: ${cli} mcp-config ${name}${embedded ? '' : ' --config FILE'}); each call keeps its connection's policy: docs/virtual-servers.md`,
  ];
}

function banner(gateway: Gateway, embedded: boolean): string {
  const names = [...gateway.config.connections.keys()];
  const first = names[0]!;
  const virtualServers = [...gateway.config.connections.values()].flatMap((c) =>
    c.upstream.kind === 'virtual' ? [{ name: c.name, upstream: c.upstream }] : [],
  );
  const lines = [
    '',
    `Portcullis is running at ${gateway.url}${embedded ? embeddedDemo(gateway) : ''}`,
    '',
    'Connections:',
    ...names.map((n) => `  ${n.padEnd(16)} Streamable HTTP ${gateway.url}/mcp/${n}    legacy SSE ${gateway.url}/sse/${n}`),
    '',
    ...signIn(gateway, embedded),
    'Next:',
    ...(gateway.consoleUrl ? [`  web console:    ${gateway.consoleUrl}${gateway.devIdentity ? '   (the link lets you sign in as a dev user)' : ''}`] : []),
    `  stdio clients:  command ${JSON.stringify(process.execPath)}, args ${JSON.stringify([cliEntry, 'connect', first, '--gateway', gateway.url])}`,
    `                  (or: ${cli} mcp-config ${first}${embedded ? '' : ' --config FILE'})`,
    `  MCP Inspector:  npx @modelcontextprotocol/inspector   then "Streamable HTTP", ${gateway.url}/mcp/${first}, and the token as a Bearer header`,
    `  SDK client:     new StreamableHTTPClientTransport(new URL('${gateway.url}/mcp/${first}'), { requestInit: { headers: { Authorization: 'Bearer …' } } })`,
    `                  (the same URL serves MCP 2026-07-28 clients, e.g. the v2 SDK pinned to it; see docs/protocol.md)`,
    ...virtualServers.slice(0, 1).flatMap((v) => virtualServerLines(gateway, v.name, v.upstream, embedded)),
    `  recordings:     ${cli} sessions list${embedded ? '' : ' --config FILE'}`,
    `  recordings API: curl -H "Authorization: Bearer $(cat ${localApiKeyPath(gateway.config.dataDir)})" ${gateway.url}/api/sessions`,
    `  health:         curl ${gateway.url}/healthz`,
    '',
    `Logs are on stderr (${resolveFormat(gateway.config.log.format) === 'pretty' ? 'pretty for this terminal; --log-format json for JSON lines' : 'JSON lines; --log-format pretty to read them'}). Stop with Ctrl-C (SIGINT) or SIGTERM; sessions drain first (a second signal stops at once).`,
    '',
  ];
  return lines.join('\n');
}

export interface GatewayOptions {
  config?: string;
  listen?: string;
  logFormat?: string;
}

/** `portcullis gateway`: starts the gateway, prints where to reach it, and drains on SIGTERM or SIGINT. */
export async function gatewayAction(opts: GatewayOptions): Promise<void> {
  const config = configForCommand(opts.config);
  if (opts.listen) {
    const m = /^(.*):(\d+)$/.exec(opts.listen);
    if (!m) {
      process.stderr.write(`portcullis: --listen expects HOST:PORT, found ${JSON.stringify(opts.listen)}\n`);
      process.exit(2);
    }
    config.listen = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }
  if (opts.logFormat !== undefined) {
    if (!logFormats.includes(opts.logFormat as LogFormat)) {
      process.stderr.write(`portcullis: --log-format expects one of ${logFormats.join(', ')}, found ${JSON.stringify(opts.logFormat)}\n`);
      process.exit(2);
    }
    config.log.format = opts.logFormat as LogFormat;
  }
  // The quick start's `files` connection serves a folder that must exist before its server starts.
  if (opts.config === undefined && config.connections.has('files')) ensureDemoFiles(demoFilesFolder());
  // The injected credentials are scrubbed from every line, as the gateway's own default logger does.
  const log = createLogger(config.log.level, process.stderr, configCredentials(config), config.log.format);
  logProcessWarnings(log);
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, { log });
  } catch (err) {
    process.stderr.write(`portcullis: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // Fail closed, as a failed start does: the gateway logged why (another process took its instance id) and the fix.
  gateway.onFatal(() => process.exit(1));
  process.stdout.write(banner(gateway, opts.config === undefined));
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    // stderr is the log: these are log lines too.
    if (stopping) {
      log.warn({ signal }, `${signal} received again: stopping at once, without draining`);
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    log.info({ signal, drainDelayMs: config.shutdown.drainDelayMs }, `${signal} received: not ready, then draining sessions`);
    gateway.stop({ drainDelay: true }).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
