import type { Logger } from 'pino';
import { isNotification, isResponse, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { type CallHandlers, type DiscoverInfo, discoverRequest, type ModernCall, type ModernTransport, readDiscover } from './modern-connection.js';
import { StdioUpstream } from './stdio.js';

type StdioConfig = ConstructorParameters<typeof StdioUpstream>[0];

/** A server silent on `server/discover` for its probe timeout is heard this many times as long for a late answer. */
const lateAnswerFactor = 12;

interface Route {
  handlers: CallHandlers;
  originalId: RequestId;
  /** The client's progress token, when the request carried one (it travels as a pool-wide one). */
  token?: string | number;
  listen: boolean;
}

interface Member {
  proc: StdioUpstream;
  ready: Promise<void>;
  routes: Map<number, Route>;
  dead: boolean;
  /** A process the pool started asks `server/discover` first: its answer goes here. */
  discovered?: ((answer: JsonRpcResponse) => void) | undefined;
}

/** The id of the `server/discover` a process the pool starts is asked before it serves. */
const rediscoverId = 'portcullis-rediscover';

/**
 * A 2026-07-28 server over stdio, shared by every session of a connection: a small pool of processes (stdio.processes)
 * rather than one per session. Requests are multiplexed by id: each travels under a pool-wide id (and its progress
 * token under a pool-wide token), so sessions sharing a process cannot collide, and answers are mapped back. A log
 * message names no request on stdio: it goes to the one request in flight on its process, and is dropped when there
 * are several (it could belong to another caller). A process that dies fails its calls and is replaced on demand.
 */
export class ModernStdioPool implements ModernTransport {
  readonly #members: Member[] = [];
  readonly #tokens = new Map<string, { member: Member; id: number }>();
  #next = 0;
  #closed = false;
  /** A process the pool started is not a 2026-07-28 server (the server was changed): the connection's era is asked again. */
  onLegacy?: (why: string) => void;

  constructor(
    private readonly config: StdioConfig,
    private readonly size: number,
    private readonly maxBytes: number,
    private readonly log: Logger,
    private readonly scrubber: CredentialScrubber,
  ) {}

  /** Takes a started process (the one that answered the probe) as the pool's first. */
  adopt(proc: StdioUpstream): void {
    this.#members.push(this.#member(proc, Promise.resolve()));
  }

  get processes(): number[] {
    return this.#members.filter((m) => !m.dead).map((m) => m.proc.pid ?? -1);
  }

  call(request: JsonRpcRequest, handlers: CallHandlers): ModernCall {
    if (this.#closed) {
      queueMicrotask(() => handlers.failed('the connection is closing'));
      return { cancel: () => {} };
    }
    const member = this.#pick();
    const id = ++this.#next;
    const meta = request.params?._meta as Record<string, unknown> | undefined;
    const token = meta?.progressToken as string | number | undefined;
    const route: Route = { handlers, originalId: request.id, listen: request.method === 'subscriptions/listen', ...(token === undefined ? {} : { token }) };
    member.routes.set(id, route);
    let params = request.params;
    if (token !== undefined) {
      const poolToken = `portcullis-${id}`;
      this.#tokens.set(poolToken, { member, id });
      params = { ...params, _meta: { ...meta, progressToken: poolToken } };
    }
    const text = JSON.stringify({ ...request, id, ...(params === undefined ? {} : { params }) });
    void member.ready.then(() => member.proc.send({ ...request, id }, text)).catch((err: Error) => this.#drop(member, id)?.handlers.failed(err.message));
    return {
      cancel: () => {
        if (this.#drop(member, id) === undefined || member.dead) return;
        const note = { jsonrpc: '2.0' as const, method: 'notifications/cancelled', params: { requestId: id, reason: 'the client cancelled the request' } };
        void member.ready.then(() => member.proc.send(note, JSON.stringify(note))).catch(() => {});
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#members.map((m) => m.proc.close()));
    this.#members.length = 0;
  }

  /**
   * The least busy live process; a new one while the pool is not full and every process is busy. Open
   * subscriptions/listen streams cost the server nothing while quiet: only calls count.
   */
  #pick(): Member {
    const live = this.#members.filter((m) => !m.dead);
    const load = (m: Member) => {
      let n = 0;
      for (const r of m.routes.values()) if (!r.listen) n++;
      return n;
    };
    const idle = live.find((m) => load(m) === 0);
    if (idle !== undefined) return idle;
    if (live.length < this.size) return this.#spawn();
    return live.reduce((a, b) => (load(b) < load(a) ? b : a));
  }

  #spawn(): Member {
    const proc = new StdioUpstream(this.config, this.maxBytes, this.log, this.scrubber);
    const member = this.#member(proc, Promise.resolve());
    member.ready = proc.start().then(() => this.#rediscover(member));
    this.#members.push(member);
    member.ready.catch((err: Error) => {
      this.#died(member, err.message);
      void proc.close().catch(() => {});
    });
    return member;
  }

  /**
   * Asks a process the pool started `server/discover` before it serves: the command may start another server than the
   * probe found (upgraded, downgraded, replaced). One that answers as a 2025-era server (or not in time) serves nothing.
   */
  async #rediscover(member: Member): Promise<void> {
    const limitMs = this.config.probeTimeoutMs * lateAnswerFactor;
    let timer: NodeJS.Timeout | undefined;
    const answer = await Promise.race([
      new Promise<JsonRpcResponse>((resolve) => {
        member.discovered = resolve;
        const request = discoverRequest(rediscoverId);
        void member.proc.send(request, JSON.stringify(request)).catch(() => {});
      }),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`it did not answer server/discover within ${limitMs} ms`), limitMs);
      }),
    ]);
    clearTimeout(timer);
    member.discovered = undefined;
    if (typeof answer === 'string') throw new Error(`the server process was started again, and ${answer}`);
    const found =
      answer.error !== undefined
        ? { legacy: `it answered server/discover with error ${answer.error.code} ${answer.error.message.slice(0, 100)}` }
        : readDiscover(answer.result);
    if ('legacy' in found) {
      this.onLegacy?.(found.legacy);
      throw new Error(`the server process was started again and is not a 2026-07-28 server now (${found.legacy})`);
    }
  }

  #member(proc: StdioUpstream, ready: Promise<void>): Member {
    const member: Member = { proc, ready, routes: new Map(), dead: false };
    proc.onmessage = (m, text) => this.#receive(member, m, text);
    proc.onclose = (reason) => this.#died(member, reason);
    proc.onfailed = (ids, reason) => {
      for (const id of ids) if (typeof id === 'number') this.#drop(member, id)?.handlers.failed(reason);
    };
    proc.onerror = (err) => this.log.warn({ err: err.message }, 'modern stdio server problem');
    return member;
  }

  #drop(member: Member, id: number): Route | undefined {
    const route = member.routes.get(id);
    if (route === undefined) return undefined;
    member.routes.delete(id);
    if (route.token !== undefined) this.#tokens.delete(`portcullis-${id}`);
    return route;
  }

  #died(member: Member, reason: string): void {
    if (member.dead) return;
    member.dead = true;
    const i = this.#members.indexOf(member);
    if (i >= 0) this.#members.splice(i, 1);
    for (const id of [...member.routes.keys()]) this.#drop(member, id)?.handlers.failed(`the server process ended: ${reason}`);
    if (!this.#closed) this.log.warn({ reason }, 'a modern stdio server process ended; the next request starts another');
  }

  #receive(member: Member, m: JsonRpcMessage, text: string): void {
    if (isResponse(m) && m.id === rediscoverId) return member.discovered?.(m);
    if (isResponse(m)) {
      const route = typeof m.id === 'number' ? this.#drop(member, m.id) : undefined;
      if (route === undefined) return;
      return route.handlers.message({ ...m, id: route.originalId }, JSON.stringify({ ...m, id: route.originalId }));
    }
    if (!isNotification(m)) return this.log.warn({ method: (m as { method?: string }).method }, 'a modern stdio server sent a request; dropped');
    const params = m.params ?? {};
    const meta = (params._meta as Record<string, unknown> | undefined) ?? {};
    const subscription = meta['io.modelcontextprotocol/subscriptionId'];
    if (subscription !== undefined) {
      // Only the listen stream it names: an unknown or malformed subscription id reaches no one.
      const route = typeof subscription === 'number' ? member.routes.get(subscription) : undefined;
      return route?.listen ? route.handlers.message(m, text) : undefined;
    }
    if (m.method === 'notifications/progress') {
      // Only the call whose pool-wide token it names (the server never saw a client's own token).
      const owner = typeof params.progressToken === 'string' ? this.#tokens.get(params.progressToken) : undefined;
      const route = owner?.member === member ? member.routes.get(owner.id) : undefined;
      if (route?.token === undefined) return;
      const restored = { ...m, params: { ...params, progressToken: route.token } };
      return route.handlers.message(restored, JSON.stringify(restored));
    }
    // Change notifications travel on a listen stream only: one without a subscription id could be anyone's.
    if (m.method === 'notifications/resources/updated' || m.method.endsWith('/list_changed')) return;
    // Nothing else names its request: it goes to the only call in flight, or nowhere.
    const calls = [...member.routes.values()].filter((r) => !r.listen);
    if (calls.length === 1) calls[0]!.handlers.message(m, text);
  }
}

/** What a stdio probe found: a modern server (its process, to adopt), or a legacy one, perhaps provisionally. */
export type StdioProbe =
  | { discover: DiscoverInfo; proc: StdioUpstream }
  | {
      legacy: string;
      spare?: StdioUpstream;
      spareStderr?: string[];
      /**
       * The server was silent for the probe timeout: served as legacy meanwhile, while the probe listens on for a
       * late answer (a slow-starting 2026-07-28 server). Settles to the final finding; `legacy` again when it stays silent.
       */
      later?: Promise<StdioProbe>;
    };

/**
 * Asks a fresh process `server/discover`. An answer decides (an error or a 2025-era reply: legacy, the process kept
 * as a spare); silence for `probeTimeoutMs` is no verdict: the finding is legacy for now, with `later`.
 */
export async function probeStdio(config: StdioConfig, maxBytes: number, log: Logger, scrubber: CredentialScrubber): Promise<StdioProbe> {
  const proc = new StdioUpstream(config, maxBytes, log, scrubber);
  const timeoutMs = config.probeTimeoutMs;
  // What the server says on stderr while it is probed belongs to the session that takes it as its spare (bounded).
  const stderr: string[] = [];
  proc.onstderr = (line) => {
    if (stderr.length < 64) stderr.push(line);
  };
  const answer = new Promise<JsonRpcMessage | string>((resolve) => {
    proc.onmessage = (m) => {
      if (isResponse(m) && m.id === 'portcullis-discover') resolve(m);
    };
    proc.onclose = (reason) => resolve(`it ended on server/discover (${reason})`);
  });
  await proc.start();
  const request = discoverRequest('portcullis-discover');
  await proc.send(request, JSON.stringify(request)).catch(() => {});
  const finding = async (m: JsonRpcMessage | string, late: boolean): Promise<StdioProbe> => {
    const verdict =
      typeof m === 'string'
        ? { legacy: m }
        : (m as JsonRpcResponse).error !== undefined
          ? { legacy: `it answered server/discover with error ${(m as JsonRpcResponse).error?.code} ${(m as JsonRpcResponse).error?.message.slice(0, 100)}` }
          : readDiscover((m as JsonRpcResponse).result);
    if (!('legacy' in verdict)) return { discover: verdict, proc };
    // A late legacy answer: the sessions meanwhile used processes of their own; this one is not needed.
    if (typeof m !== 'string' && !late) return { legacy: verdict.legacy, spare: proc, spareStderr: stderr };
    await proc.close();
    return verdict;
  };
  const timer = (ms: number) => {
    let t: NodeJS.Timeout | undefined;
    const p = new Promise<'silent'>((resolve) => {
      t = setTimeout(() => resolve('silent'), ms);
    });
    return { p, clear: () => clearTimeout(t) };
  };
  const first = timer(timeoutMs);
  const m = await Promise.race([answer, first.p]);
  first.clear();
  if (m !== 'silent') return finding(m, false);
  const laterMs = timeoutMs * lateAnswerFactor;
  const later = (async () => {
    const wait = timer(laterMs - timeoutMs);
    const m2 = await Promise.race([answer, wait.p]);
    wait.clear();
    return finding(m2 === 'silent' ? `it did not answer server/discover within ${laterMs} ms` : m2, true);
  })();
  return { legacy: `it did not answer server/discover within ${timeoutMs} ms (still listening for a late answer for ${laterMs} ms)`, later };
}
