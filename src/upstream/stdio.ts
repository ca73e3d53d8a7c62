import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Logger } from 'pino';
import type { UpstreamConfig } from './config.js';
import { type JsonRpcMessage, NestedTooDeepError, parseMessage, type RequestId } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { LineReader } from './line-reader.js';
import { type Upstream, UpstreamError } from './upstream.js';

type StdioConfig = Omit<Extract<UpstreamConfig, { kind: 'stdio' }>, 'protocol' | 'processes'>;

/** The variables of `from` that `passEnv` names (a name, or a prefix ending in `*`). */
export function passedEnvironment(passEnv: readonly string[], from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pattern of passEnv) {
    const prefix = pattern.endsWith('*') ? pattern.slice(0, -1) : undefined;
    for (const [name, value] of Object.entries(from)) {
      if (value !== undefined && (prefix === undefined ? name === pattern : name.startsWith(prefix))) out[name] = value;
    }
  }
  return out;
}

/** Resolves once the child's stdout has ended (everything it wrote has been read), or after `ms` at most. */
function stdoutDrained(child: ChildProcessWithoutNullStreams, ms: number): Promise<void> {
  const stdout = child.stdout;
  if (stdout.readableEnded || stdout.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stdout.off('end', done);
      stdout.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stdout.once('end', done);
    stdout.once('close', done);
  });
}

/**
 * Spawns the connection's server process and resolves once it runs. The child gets a minimal inherited environment
 * (PATH, HOME, …) plus the connection's configured variables, never the gateway's own environment, so the gateway's
 * secrets do not leak into servers by accident; nothing in it is specific to a session, so a process spawned ahead of
 * its session (a spare) is the same as one spawned for it. It runs in its own process group so that ending it ends
 * wrappers such as `npx` together with the server they started.
 */
export async function spawnServer(c: StdioConfig): Promise<ChildProcessWithoutNullStreams> {
  const env: Record<string, string> = { ...getDefaultEnvironment(), ...passedEnvironment(c.passEnv) };
  for (const [k, v] of Object.entries(c.env)) env[k] = v.reveal();
  const child = spawn(
    c.command,
    c.args.map((a) => a.reveal()),
    { env, stdio: 'pipe', detached: true, windowsHide: true, shell: false, ...(c.cwd ? { cwd: c.cwd } : {}) },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? `${JSON.stringify(c.command)} was not found (stdio.command)` : err.message;
      reject(new UpstreamError(`the server process could not start: ${why}`, true));
    });
  });
  return child;
}

/** Where a session's upstream takes a process spawned ahead of it (stdio-spares.ts): one that runs, or none. */
export interface SpareSource {
  take(): ChildProcessWithoutNullStreams | undefined;
}

/** Ends a process group: `pid` leads it (spawned detached). Falls back to the child alone. */
export function signalGroup(child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** How long a server gets to exit after its stdin closes, and then after SIGTERM, before the next step. */
const exitGraceMs = 2000;
const maxStderrLine = 2000;

/**
 * A server process per client session, speaking newline-delimited JSON-RPC on stdin/stdout, spawned by
 * `spawnServer` (or taken from the connection's spares, spawned the same way ahead of time). Closing the session
 * ends its whole process group: no orphans. Every line it writes (stdout and stderr) is scrubbed of the
 * credentials the gateway handed it before anything else sees it. limits.maxMessageSize bounds each message it
 * writes, not each read.
 */
export class StdioUpstream implements Upstream {
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string) => void;
  onerror?: (error: Error) => void;
  /** Set by a relay: each line from stdout as text, unparsed, instead of onmessage. */
  ontext?: (text: string) => void;
  ontruncated?: (partial: string, reason: string) => void;
  onfailed?: (ids: RequestId[], reason: string) => void;
  /** Each line the server writes to stderr (besides the log), scrubbed: the agent scrubs again (it knows more) and forwards them. */
  onstderr?: (line: string) => void;

  readonly #config: StdioConfig;
  readonly #maxMessageBytes: number;
  readonly #log: Logger;
  readonly #scrubber: CredentialScrubber;
  readonly #spares: SpareSource | undefined;
  #child: ChildProcessWithoutNullStreams | undefined;
  #exited: Promise<void> | undefined;
  #closeReason: string | undefined;
  #closed = false;

  constructor(config: StdioConfig, maxMessageBytes: number, log: Logger, scrubber: CredentialScrubber, spares?: SpareSource) {
    this.#config = config;
    this.#spares = spares;
    this.#maxMessageBytes = maxMessageBytes;
    this.#log = log;
    this.#scrubber = scrubber;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Started, and neither exited nor closed. */
  get running(): boolean {
    return this.#child !== undefined && !this.#closed && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async start(): Promise<void> {
    // A spare (stdio-spares.ts) was spawned from this same config before the session opened; none: spawn one now.
    const child = this.#spares?.take() ?? (await spawnServer(this.#config));
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        // Wrappers (npx, sh) may leave the real server running; end the rest of the group.
        this.#signal('SIGTERM');
        const reason = signal ? `the server process was killed by ${signal}` : `the server process exited with code ${code}`;
        // What it wrote before it died may still be in the pipe: read it all, then see whether a message was cut off.
        void stdoutDrained(child, exitGraceMs).then(() => {
          const partial = reader.rest();
          if (partial.trim() !== '') this.ontruncated?.(this.#scrubber.scrub(partial), `${reason} in the middle of a message`);
          this.#end(reason);
          resolve();
        });
      });
    });
    child.on('error', (err) => this.onerror?.(err));
    child.stdin.on('error', () => {
      // EPIPE when the server has gone: reported through send() and the exit.
    });

    const reader = new LineReader(
      this.#maxMessageBytes,
      (line) => this.#receive(line),
      (limit) => {
        this.#closeReason = `the server sent a message larger than limits.maxMessageSize (${limit} bytes)`;
        this.#log.warn({ limit }, 'upstream message too large; ending the session');
        void this.close();
      },
    );
    child.stdout.on('data', (chunk: Buffer) => reader.push(chunk));

    const stderr = new LineReader(
      64 * 1024,
      (line) => {
        // Scrubbed whole, then cut: cutting first could leave the start of a credential that the scrubber no longer recognizes.
        const scrubbed = this.#scrubber.scrub(line).slice(0, maxStderrLine);
        this.#log.info({ stderr: scrubbed }, 'upstream stderr');
        this.onstderr?.(scrubbed);
      },
      () => this.#log.warn('upstream stderr line too long; the rest of stderr is dropped'),
    );
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  }

  #receive(raw: string): void {
    const line = this.#scrubber.scrubJson(raw);
    if (this.ontext !== undefined) {
      // A relay (the agent): the text goes on as it is; the gateway at the other end checks it as a message.
      const first = line.trimStart().charCodeAt(0);
      if (first === 123 /* { */ || first === 91 /* [ */) this.ontext(line);
      else this.onerror?.(new Error('the server wrote a line that is not a JSON-RPC message'));
      return;
    }
    let message: JsonRpcMessage;
    try {
      message = parseMessage(line);
    } catch (err) {
      // An answer the gateway cannot take: its request gets an error rather than waiting forever.
      if (err instanceof NestedTooDeepError && err.id !== null) this.onfailed?.([err.id], `the server's answer was refused: ${err.message}`);
      // Servers print banners and debug output on stdout; one bad line is not the end of the session.
      this.onerror?.(new Error(`the server wrote a line that is not a JSON-RPC message: ${(err as Error).message}`));
      return;
    }
    this.onmessage?.(message, line);
  }

  async send(_message: JsonRpcMessage, text: string): Promise<void> {
    const stdin = this.#child?.stdin;
    if (this.#closed || stdin === undefined || !stdin.writable) {
      throw new UpstreamError(`the server process cannot be written to: ${this.#closeReason ?? 'it has exited'}`, true);
    }
    const ok = stdin.write(`${text}\n`);
    if (!ok) {
      // Back-pressure: wait until the server has read what is queued, or has gone.
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off('drain', done);
          stdin.off('close', done);
          resolve();
        };
        stdin.once('drain', done);
        stdin.once('close', done);
      });
    }
  }

  setProtocolVersion(): void {
    // stdio carries no version header.
  }

  /** Stops reading stdout: the pipe fills and the server blocks on its next write, holding nothing here. */
  pause(): void {
    this.#child?.stdout.pause();
  }

  resume(): void {
    this.#child?.stdout.resume();
  }

  /** Closes stdin (the MCP way to ask a stdio server to stop), then SIGTERM, then SIGKILL to the process group. */
  async close(): Promise<void> {
    const child = this.#child;
    if (child === undefined || this.#closed) {
      this.#end('closed by the gateway');
      return;
    }
    this.#closeReason ??= 'closed by the gateway';
    // A server blocked writing to a paused pipe could not see its stdin close: let it write (into the void) and exit.
    child.stdout.resume();
    child.stdin.end();
    if (await this.#exitsWithin(exitGraceMs)) return;
    this.#signal('SIGTERM');
    if (await this.#exitsWithin(exitGraceMs)) return;
    this.#signal('SIGKILL');
    await this.#exited;
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#child !== undefined) signalGroup(this.#child, signal);
  }

  async #exitsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const exited = this.#exited!.then(() => true);
    const result = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    return result;
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onclose?.(this.#closeReason ?? reason);
  }
}
