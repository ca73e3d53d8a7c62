import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { Gateway } from '../gateway.js';
import { configForCommand } from './load-config.js';

/** This checkout's CLI entry point: a desktop client launches it by absolute path, never by a registry name. */
const cliEntry = fileURLToPath(new URL('../../../bin/portcullis.js', import.meta.url));

function banner(gateway: Gateway, embedded: boolean): string {
  const names = [...gateway.config.connections.keys()];
  const first = names[0]!;
  const lines = [
    '',
    `Portcullis is running at ${gateway.url}${embedded ? ' (embedded defaults: the demo server @modelcontextprotocol/server-everything)' : ''}`,
    '',
    'Connections:',
    ...names.map((n) => `  ${n.padEnd(16)} Streamable HTTP ${gateway.url}/mcp/${n}    legacy SSE ${gateway.url}/sse/${n}`),
    '',
    'Next:',
    `  MCP Inspector:  npx @modelcontextprotocol/inspector   then choose "Streamable HTTP" and enter ${gateway.url}/mcp/${first}`,
    `  SDK client:     new StreamableHTTPClientTransport(new URL('${gateway.url}/mcp/${first}'))`,
    `  stdio clients:  command ${JSON.stringify(process.execPath)}, args ${JSON.stringify([cliEntry, 'connect', first, '--gateway', gateway.url])}`,
    `  health:         curl ${gateway.url}/healthz`,
    '',
    'Logs are JSON lines on stderr. Stop with Ctrl-C (SIGINT) or SIGTERM; sessions drain first.',
    '',
  ];
  return lines.join('\n');
}

export function gatewayCommand(): Command {
  return new Command('gateway')
    .description('run the gateway')
    .option('-c, --config <file>', 'config file (YAML); without it, embedded quick-start defaults')
    .option('--listen <host:port>', 'override the listen address from the config')
    .action(async (opts: { config?: string; listen?: string }) => {
      const config = configForCommand(opts.config);
      if (opts.listen) {
        const m = /^(.*):(\d+)$/.exec(opts.listen);
        if (!m) {
          process.stderr.write(`portcullis: --listen expects HOST:PORT, found ${JSON.stringify(opts.listen)}\n`);
          process.exit(2);
        }
        config.listen = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
      }
      let gateway: Gateway;
      try {
        gateway = await Gateway.start(config);
      } catch (err) {
        process.stderr.write(`portcullis: ${(err as Error).message}\n`);
        process.exit(1);
      }
      process.stdout.write(banner(gateway, opts.config === undefined));
      const stop = (signal: string) => {
        process.stderr.write(`portcullis: ${signal} received, draining sessions\n`);
        gateway.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`portcullis: shutdown failed: ${(err as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
