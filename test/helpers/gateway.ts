import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';
import { readLocalApiKey } from '../../src/crypto/local-api-key.js';
import { createLogger } from '../../src/log.js';
import type { CredentialScrubber } from '../../src/scrub/credential-scrubber.js';
import { configCredentials } from '../../src/config/logged-credentials.js';

/** The Authorization header with the local API key of the gateway whose data directory this is (as the CLI reads it). */
export function localApiAuth(dataDir: string): Record<string, string> {
  const key = readLocalApiKey(dataDir);
  if (key === undefined) throw new Error(`no local API key in ${dataDir}: has a gateway started on it?`);
  return { authorization: `Bearer ${key}` };
}

/**
 * Log lines a test gateway wrote, parsed, so tests can assert on them. Written by the gateway's own logger (its
 * redaction and, with `scrubber`, its credential scrubbing), into memory instead of stderr.
 */
export class CapturedLog {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger: Logger;

  constructor(level = 'debug', scrubber?: CredentialScrubber) {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) if (line) this.lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    this.logger = createLogger(level, sink, scrubber, 'json');
  }

  /** Every log line as text, for asserting that something never appears. */
  get text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  /** A dev-identity token of the default test user (`tester`, in group `testers`), when the dev identity is on. */
  token: string;
  /** The Authorization header carrying `token`. */
  auth: Record<string, string>;
  /** A dev-identity token for another configured dev user. */
  tokenFor(user: string): Promise<string>;
  /** The Authorization header carrying the gateway's local API key: the machine's view of /api/sessions and /metrics. */
  apiAuth: Record<string, string>;
  /** The data directory (a fresh temporary one unless the config names one): the SQLite store, the key. */
  dataDir: string;
  log: CapturedLog;
  /** The Streamable HTTP endpoint of a connection. */
  mcp(connection: string): URL;
  /** The legacy SSE endpoint of a connection. */
  sse(connection: string): URL;
  stop(): Promise<void>;
}

/**
 * Starts an in-process gateway on a free loopback port with the given config (listen is forced to
 * 127.0.0.1:0). Goes through the same YAML parsing and validation as `portcullis gateway --config`.
 * Without a `dataDir` in the config it gets a temporary one, removed again by stop().
 */
/** The dev users a test gateway has unless its config lists its own. */
export const testUsers = { tester: ['testers'], other: ['testers'], outsider: [] as string[] };

/**
 * A test's config with what every test gateway needs to be usable: without an `identity` section, the dev
 * identity with the test users; a connection without `access` is open to every signed-in user.
 */
function withTestIdentity(config: Record<string, unknown>): Record<string, unknown> {
  const connections = Object.fromEntries(
    Object.entries((config.connections ?? {}) as Record<string, Record<string, unknown>>).map(([name, c]) => [
      name,
      c !== null && typeof c === 'object' && c.access === undefined ? { ...c, access: { groups: ['*'] } } : c,
    ]),
  );
  return {
    ...config,
    ...(config.identity === undefined ? { identity: { dev: { users: testUsers } } } : {}),
    ...(config.connections !== undefined ? { connections } : {}),
  };
}

export async function startTestGateway(config: Record<string, unknown>, options: GatewayOptions = {}): Promise<TestGateway> {
  const ownDir = config.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'portcullis-test-')) : undefined;
  const dataDir = (config.dataDir as string | undefined) ?? ownDir!;
  const text = stringify({ ...withTestIdentity(config), dataDir, listen: '127.0.0.1:0' });
  const parsed = parseConfig(text, '(test)');
  // As `portcullis gateway` does: every line is scrubbed of the credentials the gateway injects into its upstreams.
  const log = new CapturedLog('debug', configCredentials(parsed));
  const gateway = await Gateway.start(parsed, { log: log.logger, ...options });
  const tokenFor = async (user: string) => {
    if (gateway.devIdentity === undefined) throw new Error('this test gateway has no dev identity');
    return (await gateway.devIdentity.mint(user)).token;
  };
  const firstUser = gateway.devIdentity?.users[0];
  const token = firstUser === undefined ? '' : await tokenFor(firstUser);
  return {
    gateway,
    url: gateway.url,
    token,
    auth: token === '' ? {} : { authorization: `Bearer ${token}` },
    tokenFor,
    get apiAuth() {
      return localApiAuth(dataDir);
    },
    dataDir,
    log,
    mcp: (c) => new URL(`/mcp/${c}`, gateway.url),
    sse: (c) => new URL(`/sse/${c}`, gateway.url),
    stop: async () => {
      await gateway.stop();
      if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}
