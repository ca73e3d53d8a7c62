import type { Logger } from 'pino';
import { canonicalJson } from '../protocol/canonical-json.js';
import { errorResponse, ErrorCode, isRequest, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import { type InitializeFacts, type Lease as LinkLease, SharedLink } from './shared-link.js';
import { type Upstream, UpstreamError } from './upstream.js';

/**
 * `upstreamSessions: pooled` (docs/protocol.md, "Pooled upstream sessions"): 2025-era client sessions of one
 * connection, principal, protocol version and client-capability set share a few upstream sessions (for stdio, server
 * processes) instead of starting one each. Each client session stays a whole gateway session (its own Mcp-Session-Id,
 * pipeline, recording); only its Upstream is a lease on a shared link, which multiplexes the leases' requests by id.
 */

export interface SharedUpstreamsOptions {
  /** A link with no lease is closed after this long unused (sessions.modernIdleTimeout). */
  idleMs: number;
  /** Links per key at most; past it new client sessions share the least busy one (sessions.modernPoolSize). */
  maxPerKey: number;
  log: Logger;
}

/** A link with this many requests in flight is shared no more while another may be opened (sessions.modernPoolSize). */
const shareBelow = 8;

/**
 * A client session's Upstream on a pooled connection: nothing starts when the session opens; its `initialize` finds
 * (or opens) a link for its key and is answered with that link's initialize result.
 */
export class Lease implements LinkLease {
  /** The client session's request id → the link's. */
  readonly sent = new Map<string, number>();
  #link: SharedLink | undefined;
  #closed = false;
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string, cutOff?: boolean) => void;
  onfailed?: (ids: RequestId[], reason: string) => void;
  onerror?: (error: Error) => void;

  constructor(
    private readonly pool: SharedUpstreams,
    private readonly prefix: string,
    private readonly create: () => Upstream,
    private readonly admit: AdmitLink | undefined,
  ) {}

  async start(): Promise<void> {}

  setProtocolVersion(): void {}

  deliver(message: JsonRpcMessage, text: string): void {
    if (!this.#closed) this.onmessage?.(message, text);
  }

  async send(message: JsonRpcMessage, text: string, traceparent?: string): Promise<void> {
    if (this.#closed) throw new UpstreamError('the session has ended', true);
    if (isRequest(message) && message.method === 'initialize') return this.#initialize(message);
    if (this.#link === undefined) throw new UpstreamError('initialize first: the pooled upstream session is chosen by it', false);
    if (this.#link.closed) throw new UpstreamError('the pooled upstream session has ended', true);
    return this.#link.send(this, message, text, traceparent);
  }

  async #initialize(request: JsonRpcRequest): Promise<void> {
    if (this.#link !== undefined) throw new UpstreamError('initialize was already sent on this session', false);
    const facts: InitializeFacts = {
      protocolVersion: request.params?.protocolVersion,
      capabilities: request.params?.capabilities ?? {},
      clientInfo: request.params?.clientInfo,
    };
    let answer: JsonRpcResponse;
    try {
      const link = await this.pool.linkFor(`${this.prefix}${canonicalJson([facts.protocolVersion, facts.capabilities])}`, facts, this.create, this.admit);
      if (this.#closed) return;
      this.#link = link;
      link.attach(this);
      answer = { jsonrpc: '2.0', id: request.id, result: link.result! };
    } catch (err) {
      answer = errorResponse(request.id, ErrorCode.UpstreamUnavailable, `the pooled upstream session could not open: ${(err as Error).message}`);
    }
    // Delivered after this send has resolved, as a server's answer would be.
    setImmediate(() => this.deliver(answer, JSON.stringify(answer)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#link?.detach(this);
  }
}

/** Takes a place under the limits for one more link (a stdio server process), or throws the limit's error; released when the link closes. */
export type AdmitLink = () => { release(): void };

/** The pooled links of every `upstreamSessions: pooled` connection, by connection, principal, version and capabilities. */
export class SharedUpstreams {
  readonly #links = new Map<string, SharedLink[]>();
  readonly #opening = new Map<string, Array<Promise<SharedLink>>>();

  constructor(private readonly o: SharedUpstreamsOptions) {}

  /**
   * A client session's upstream on a pooled connection. `create` makes a fresh upstream link as a per-client session
   * would have (a link is opened only when no open one of the key can take the session).
   */
  lease(connection: string, principal: { issuer: string; subject: string }, create: () => Upstream, admit?: AdmitLink): Upstream {
    return new Lease(this, canonicalJson([connection, principal.issuer, principal.subject]), create, admit);
  }

  /**
   * @internal The link a lease of `key` joins: the least busy open one while it has fewer than `shareBelow` requests in
   * flight (a gateway stage's own request, e.g. the pins' tools/list, must not make the next session start a process),
   * else a new one under the cap, else the least busy. While the key's first link is still opening, sessions wait for it.
   */
  async linkFor(key: string, facts: InitializeFacts, create: () => Upstream, admit?: AdmitLink): Promise<SharedLink> {
    const open = (this.#links.get(key) ?? []).filter((l) => !l.closed).sort((a, b) => a.busy - b.busy);
    const opening = this.#opening.get(key) ?? [];
    const least = open[0];
    if (least === undefined && opening.length > 0) return opening[0]!;
    if (least !== undefined && (least.busy < shareBelow || open.length + opening.length >= this.o.maxPerKey)) return least;
    try {
      return await this.#open(key, facts, create, admit);
    } catch (err) {
      // One more could not open (a limit, a server that will not start): share an open one if any.
      const fallback = open.find((l) => !l.closed);
      if (fallback === undefined) throw err;
      return fallback;
    }
  }

  #open(key: string, facts: InitializeFacts, create: () => Upstream, admit: AdmitLink | undefined): Promise<SharedLink> {
    const opening = (async () => {
      // Counted before it starts, released when it closes (however it closes, its initialize failing included).
      const held = admit?.();
      let upstream: Upstream;
      try {
        upstream = create();
      } catch (err) {
        held?.release();
        throw err;
      }
      const link = new SharedLink(key, upstream, this.o.log, this.o.idleMs, (l) => {
        held?.release();
        this.#remove(l);
      });
      try {
        await link.open(facts);
      } catch (err) {
        await link.close(`could not initialize: ${(err as Error).message}`);
        throw err;
      }
      this.#links.set(key, [...(this.#links.get(key) ?? []), link]);
      this.o.log.info({ links: this.#links.get(key)!.length }, 'pooled upstream session opened');
      return link;
    })();
    this.#opening.set(key, [...(this.#opening.get(key) ?? []), opening]);
    const done = () => {
      const left = (this.#opening.get(key) ?? []).filter((p) => p !== opening);
      if (left.length === 0) this.#opening.delete(key);
      else this.#opening.set(key, left);
    };
    opening.then(done, done);
    return opening;
  }

  #remove(link: SharedLink): void {
    const left = (this.#links.get(link.key) ?? []).filter((l) => l !== link);
    if (left.length === 0) this.#links.delete(link.key);
    else this.#links.set(link.key, left);
  }

  /** Requests in flight on all links (for tests). */
  get busy(): number {
    let n = 0;
    for (const list of this.#links.values()) for (const l of list) n += l.busy;
    return n;
  }

  /** Pooled links open now (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const list of this.#links.values()) n += list.length;
    return n;
  }

  /** Closes every link (gateway shutdown). */
  async close(): Promise<void> {
    const all = [...this.#links.values()].flat();
    await Promise.all(all.map((l) => l.close('gateway shutting down')));
  }
}
