import type { LimitedConnection, LimitsConfig } from './config.js';
import { globToRegExp } from '../core/glob.js';
import { idKey, type JsonRpcRequest, type RequestId } from '../protocol/jsonrpc.js';
import { Counters, type KeyedBuckets } from './keyed.js';
import type { LimitExceededError } from './limit-error.js';
import { type Principal, principalKey } from './principal.js';
import type { Refusals } from './refusals.js';
import type { Rate } from './token-bucket.js';

/** How long a client refused for its requests in flight is told to wait: a hint, not a promise. */
const requestRetrySeconds = 1;

interface Slot {
  /** Undefined for a member session's request: the principal-wide counts hold its virtual session's request instead. */
  principal: string | undefined;
  connection: string;
  /** Requests in flight under this id (a legacy client may reuse an id before its answer: each counts). */
  count: number;
}

interface ToolRule {
  pattern: string;
  match: RegExp;
  rate: Rate;
}

/** Request admission: each principal's request rate, its rate per tool on a connection, and the requests in flight. */
export class RequestLimits {
  readonly #inFlight = { principal: new Counters(), connection: new Counters(), global: 0 };
  readonly #toolRules = new Map<string, ToolRule[]>();
  /** Requests in flight by session, then by idKey of the client's id. */
  readonly #slots = new Map<string, Map<string, Slot>>();

  constructor(
    private readonly config: LimitsConfig,
    private readonly refusals: Refusals,
    /** limits.principal.requests, per principal. */
    private readonly requests: KeyedBuckets,
    /** A connection's limits.tools, per principal, connection and tool pattern. */
    private readonly toolRates: KeyedBuckets,
  ) {}

  /** Requests in flight now on the whole gateway. */
  get inFlight(): number {
    return this.#inFlight.global;
  }

  /**
   * Admits a client request on a session (its rate, per tool for tools/call, and its place in flight), or says which
   * limit refuses it. `paced` false spares a session's opening initialize the request rate: limits.principal.sessionOpens
   * already paces it. `member`: the request of a virtual server's member session, on behalf of a request its virtual
   * session already admitted: the principal's rate and its (and the gateway's) requests in flight counted that one,
   * so only the member connection's own limits (per tool, in flight) apply, as on a direct call.
   */
  admit(
    sessionId: string,
    connection: LimitedConnection,
    principal: Principal,
    request: JsonRpcRequest,
    paced: boolean,
    member = false,
  ): LimitExceededError | undefined {
    let slots = this.#slots.get(sessionId);
    const key = idKey(request.id);
    const p = principalKey(principal);
    const taken: Array<{ refund(): void }> = [];
    const refund = () => taken.forEach((b) => b.refund());
    if (paced && !member) {
      const rate = this.config.principal.requests;
      const bucket = this.requests.get(p, rate);
      if (!bucket.take()) return this.refusals.refuseRate(principal, connection.name, 'limits.principal.requests', rate, bucket.waitMs(), 'requests');
      taken.push(bucket);
    }
    const tool = request.method === 'tools/call' && typeof request.params?.name === 'string' ? request.params.name : undefined;
    const rule = tool === undefined ? undefined : this.#toolRule(connection, tool);
    if (rule !== undefined) {
      const bucket = this.toolRates.get(`${p}\n${connection.name}\n${rule.pattern}`, rule.rate);
      if (!bucket.take()) {
        refund();
        return this.refusals.refuseRate(
          principal,
          connection.name,
          `connections.${connection.name}.limits.tools.${rule.pattern}`,
          rule.rate,
          bucket.waitMs(),
          `calls of ${JSON.stringify(tool)}`,
        );
      }
      taken.push(bucket);
    }
    const f = this.#inFlight;
    const busy = (limit: string, value: number, what: string) => {
      refund();
      return this.refusals.refuse(
        principal,
        connection.name,
        limit,
        String(value),
        requestRetrySeconds,
        `Too many requests in flight: ${what} (${limit}: ${value}); wait for an answer first`,
      ).refused;
    };
    if (!member && f.principal.count(p) >= this.config.principal.requestsInFlight)
      return busy('limits.principal.requestsInFlight', this.config.principal.requestsInFlight, 'you have as many requests waiting as one caller may');
    if (f.connection.count(connection.name) >= connection.limits.requestsInFlight)
      return busy(
        `connections.${connection.name}.limits.requestsInFlight`,
        connection.limits.requestsInFlight,
        `connection '${connection.name}' has as many requests waiting as it may`,
      );
    if (!member && f.global >= this.config.global.requestsInFlight)
      return busy('limits.global.requestsInFlight', this.config.global.requestsInFlight, 'the gateway has as many requests waiting as it may');
    if (!member) {
      f.principal.add(p);
      f.global++;
    }
    f.connection.add(connection.name);
    if (slots === undefined) this.#slots.set(sessionId, (slots = new Map()));
    const slot = slots.get(key);
    if (slot !== undefined) slot.count++;
    else slots.set(key, { principal: member ? undefined : p, connection: connection.name, count: 1 });
    return undefined;
  }

  /**
   * Whether a principal's next requests are refused before they reach a session: it was refused for its request
   * rate or its requests in flight lately (that refusal is recorded) and is still over the limit. The edge then
   * answers 429 at once, so a client that keeps sending costs neither parsing into its session nor a recorded event
   * per request: one recorded refusal per burst, the rest counted.
   */
  refusesEarly(principal: Principal): LimitExceededError | undefined {
    const p = principalKey(principal);
    const rate = this.config.principal.requests;
    const bucket = this.requests.peek(p);
    if (bucket !== undefined && this.refusals.inBurst(principal, 'limits.principal.requests')) {
      const waitMs = bucket.waitMs();
      if (waitMs > 0) return this.refusals.refuseRate(principal, '', 'limits.principal.requests', rate, waitMs, 'requests');
    }
    const cap = this.config.principal.requestsInFlight;
    if (this.#inFlight.principal.count(p) >= cap && this.refusals.inBurst(principal, 'limits.principal.requestsInFlight')) {
      return this.refusals.refuse(
        principal,
        '',
        'limits.principal.requestsInFlight',
        String(cap),
        requestRetrySeconds,
        `Too many requests in flight: you have as many requests waiting as one caller may (limits.principal.requestsInFlight: ${cap}); wait for an answer first`,
      ).refused;
    }
    return undefined;
  }

  /** A request refused before any session (a bad header or envelope) costs the request rate too: a flood is 429, unrecorded. */
  admitRefused(principal: Principal): LimitExceededError | undefined {
    const rate = this.config.principal.requests;
    const bucket = this.requests.get(principalKey(principal), rate);
    return bucket.take() ? undefined : this.refusals.refuseRate(principal, '', 'limits.principal.requests', rate, bucket.waitMs(), 'requests');
  }

  /** The request is over for its client: answered, or cancelled by it. */
  release(sessionId: string, id: RequestId): void {
    const slots = this.#slots.get(sessionId);
    const key = idKey(id);
    const slot = slots?.get(key);
    if (slot === undefined) return;
    if (--slot.count === 0) slots!.delete(key);
    if (slots!.size === 0) this.#slots.delete(sessionId);
    this.#freeSlot(slot);
  }

  /** The session has ended: whatever it still had in flight is over. */
  releaseSession(sessionId: string): void {
    const slots = this.#slots.get(sessionId);
    if (slots === undefined) return;
    this.#slots.delete(sessionId);
    for (const slot of slots.values()) for (let i = 0; i < slot.count; i++) this.#freeSlot(slot);
  }

  #freeSlot(slot: Slot): void {
    this.#inFlight.connection.remove(slot.connection);
    if (slot.principal === undefined) return;
    this.#inFlight.principal.remove(slot.principal);
    this.#inFlight.global--;
  }

  #toolRule(connection: LimitedConnection, tool: string): ToolRule | undefined {
    let rules = this.#toolRules.get(connection.name);
    if (rules === undefined) {
      rules = Object.entries(connection.limits.tools).map(([pattern, rate]) => ({ pattern, match: globToRegExp(pattern), rate }));
      this.#toolRules.set(connection.name, rules);
    }
    return rules.find((r) => r.match.test(tool));
  }
}
