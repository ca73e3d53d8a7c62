import { createInterface } from 'node:readline';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/schema.js';
import { redactKnownSecrets } from './redact-secrets.js';
import { SdkTransportUpstream } from './sdk-transport.js';
import { UpstreamError } from './upstream.js';

type StdioConfig = Extract<UpstreamConfig, { kind: 'stdio' }>;

/**
 * A server process per client session. The child gets a minimal inherited environment (PATH, HOME, …)
 * plus the connection's configured variables, never the gateway's own environment, so the gateway's
 * secrets do not leak into servers by accident. Its stderr goes to the log with configured secrets cut out.
 */
export class StdioUpstream extends SdkTransportUpstream {
  constructor(config: StdioConfig, maxMessageBytes: number, log: Logger) {
    const env: Record<string, string> = { ...getDefaultEnvironment() };
    for (const [k, v] of Object.entries(config.env)) env[k] = v.reveal();
    const args = config.args.map((a) => a.reveal());
    const secrets = [...Object.values(config.env), ...config.args].filter((s) => s.hasReferences);
    const transport = new StdioClientTransport({
      command: config.command,
      args,
      env,
      stderr: 'pipe',
      maxBufferSize: maxMessageBytes,
      ...(config.cwd ? { cwd: config.cwd } : {}),
    });
    super(transport, (err) => new UpstreamError(`the server process cannot be written to: ${(err as Error).message}`, true));
    const stderr = transport.stderr;
    if (stderr) {
      const lines = createInterface({ input: stderr as unknown as NodeJS.ReadableStream, crlfDelay: Infinity });
      lines.on('line', (line) => log.info({ stderr: redactKnownSecrets(line.slice(0, 2000), secrets) }, 'upstream stderr'));
    }
  }

  override async start(): Promise<void> {
    const transport = this.transport as StdioClientTransport;
    try {
      await transport.start();
    } catch (err) {
      throw new UpstreamError(`the server process could not start: ${(err as Error).message}`, true);
    }
    // Name the way the process ended, so a session's end says why.
    const child = (transport as unknown as { _process?: import('node:child_process').ChildProcess })._process;
    child?.once('exit', (code, signal) => {
      this.setCloseReason(signal ? `the server process was killed by ${signal}` : `the server process exited with code ${code}`);
    });
  }

  get pid(): number | null {
    return (this.transport as StdioClientTransport).pid;
  }
}
