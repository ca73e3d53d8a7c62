import type { Logger } from 'pino';
import type { JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { createUpstream, type UpstreamAgents } from '../upstream/index.js';
import { StdioUpstream } from '../upstream/stdio.js';
import type { Upstream } from '../upstream/upstream.js';
import type { AgentConfig } from './config.js';
import type { Channel, Mux } from './mux.js';

/** What every session of the agent shares, whichever tunnel carries it. */
export interface SessionContext {
  config: AgentConfig;
  scrubber: CredentialScrubber;
  httpAgents: UpstreamAgents;
  log: Logger;
}

/** Bytes a session's channel may queue toward the gateway before its server is paused. */
const maxQueuedBytes = 4 << 20;

/**
 * Stderr goes to the gateway as control frames, outside the channel's flow control, so a server that floods stderr
 * is held to `perSecond` lines; the count of those dropped rides on the next line that goes.
 */
export class StderrBudget {
  #windowStart = 0;
  #sent = 0;
  #dropped = 0;
  constructor(private readonly perSecond = 50) {}
  /** false: drop this line; otherwise send it, with how many were dropped before it. */
  take(now = Date.now()): number | false {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#sent = 0;
    }
    if (this.#sent >= this.perSecond) {
      this.#dropped++;
      return false;
    }
    this.#sent++;
    const dropped = this.#dropped;
    this.#dropped = 0;
    return dropped;
  }
}

/** Starts a session's server and relays between it and the channel, scrubbing credentials from all it says. */
export async function serveSession(o: SessionContext, mux: Mux, channel: Channel, connection: string, sessions: Map<number, Upstream>): Promise<void> {
  const config = o.config.connections.get(connection);
  if (config === undefined) {
    mux.sendControl(channel.id, { type: 'failed', error: `this agent does not serve connection '${connection.slice(0, 100)}'` });
    mux.forget(channel, 'unknown connection');
    return;
  }
  const log = o.log.child({ connection, channel: channel.id });
  const upstream = createUpstream(config, o.config.maxMessageBytes, o.httpAgents, log);
  sessions.set(channel.id, upstream);
  // Backpressure: when the gateway withholds credit (its client is behind), the channel's queue grows; past a bound
  // the server is paused (its pipe fills and it waits) until the queue has gone out.
  let paused = false;
  const relay = (text: string) => {
    if (channel.closed) return;
    // Still JSON after scrubbing: the gateway parses and checks every message.
    channel.send(o.scrubber.scrubJson(text));
    if (!paused && channel.queuedBytes > maxQueuedBytes && upstream.pause !== undefined) {
      paused = true;
      upstream.pause();
    }
  };
  channel.ondrain = () => {
    if (!paused) return;
    paused = false;
    upstream.resume?.();
  };
  // A stdio server's lines go on unparsed (the gateway parses and checks each message); others hand over text too.
  if (upstream instanceof StdioUpstream) upstream.ontext = relay;
  else upstream.onmessage = (_message, text) => relay(text);
  upstream.onclose = (reason: string) => {
    sessions.delete(channel.id);
    channel.close(o.scrubber.scrub(`the server closed: ${reason}`));
  };
  upstream.onerror = (err) => log.warn({ err: o.scrubber.scrub(err.message) }, 'upstream problem');
  const stderr = new StderrBudget();
  upstream.onstderr = (line) => {
    const dropped = stderr.take();
    if (dropped === false || channel.closed) return;
    mux.sendControl(channel.id, { type: 'stderr', line: o.scrubber.scrub(line), ...(dropped > 0 ? { dropped } : {}) });
  };
  channel.onclose = () => {
    sessions.delete(channel.id);
    void upstream.close();
  };
  // A stdio server takes the text as it is; only an HTTP upstream looks into every message (request or not), and a
  // stdio one into its initialize (a server refusing it as 2026-07-28-only has its era asked again).
  const parseAll = config.upstream.kind !== 'stdio';
  channel.onmessage = (text) => {
    let message: JsonRpcMessage;
    try {
      message = parseAll || text.includes('"initialize"') ? (JSON.parse(text) as JsonRpcMessage) : (undefined as unknown as JsonRpcMessage);
    } catch {
      log.warn('the gateway relayed a message that is not JSON; dropped');
      return;
    }
    upstream.send(message, text).catch((err: Error) => log.warn({ err: o.scrubber.scrub(err.message) }, 'could not deliver to the server'));
  };
  try {
    await upstream.start();
  } catch (err) {
    sessions.delete(channel.id);
    mux.sendControl(channel.id, {
      type: 'failed',
      error: o.scrubber.scrub(`the agent could not start the server of '${connection}': ${(err as Error).message}`),
    });
    mux.forget(channel, 'start failed');
    return;
  }
  if (channel.closed) return void upstream.close();
  mux.sendControl(channel.id, { type: 'opened' });
  log.info('session started');
}
