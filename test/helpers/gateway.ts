import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';

/** Log lines a test gateway wrote, parsed, so tests can assert on them. */
export class CapturedLog {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger: Logger;

  constructor(level = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) if (line) this.lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    this.logger = pino({ level }, sink);
  }

  /** Every log line as text, for asserting that something never appears. */
  get text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
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
export async function startTestGateway(config: Record<string, unknown>, options: GatewayOptions = {}): Promise<TestGateway> {
  const ownDir = config.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'portcullis-test-')) : undefined;
  const dataDir = (config.dataDir as string | undefined) ?? ownDir!;
  const text = stringify({ ...config, dataDir, listen: '127.0.0.1:0' });
  const log = new CapturedLog();
  const gateway = await Gateway.start(parseConfig(text, '(test)'), { log: log.logger, ...options });
  return {
    gateway,
    url: gateway.url,
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
