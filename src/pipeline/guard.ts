import type { RequestFacts } from '../policy/cel.js';
import type { GuardrailDefaults } from '../policy/config.js';
import { requestFacts, targetOf } from '../policy/facts.js';
import type { Decision, RuleSet } from '../policy/rules.js';
import { ErrorCode, errorResponse, isResponse, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../protocol/jsonrpc.js';
import { requestDigest } from '../reviews/request-digest.js';
import type { ReviewOutcome } from '../reviews/held-calls.js';
import type { Reviews } from '../reviews/reviews.js';
import { inspectWith, type ListKind, type MessageContext, type Stage, type StageHandlers, type StageVerdict, type Verdict } from './stage.js';

/** The server's questions to the client whose answers the rules see as `inputResponses`. */
const inputMethods: ReadonlySet<string> = new Set(['elicitation/create', 'sampling/createMessage', 'roots/list']);

export interface GuardOptions {
  connection: string;
  rules: RuleSet;
  defaults: GuardrailDefaults;
  /** Absent when there is no store to keep reviews in (recording off): a review rule then refuses. */
  reviews: Reviews | undefined;
  reviewTimeoutMs: number;
  /** The params as approvers are shown them: as the recording keeps them (client-argument masking applied). */
  paramsForReview: (request: JsonRpcRequest) => string;
  /**
   * Tool annotations from the connection's approved (pinned) definitions, when pinning is on: what an admin
   * trusted, whichever session listed what. `annotations` is undefined until `load` has read the pins.
   */
  pinned?: { annotations(tool: string): Record<string, unknown> | undefined; load(): Promise<void> };
}

/**
 * Guardrails: every request to the server is judged by the rules (first match decides, else the connection's
 * default). `deny` answers the client with the rule's message; `review` holds the call until approvers approve
 * exactly it (then it goes on, unchanged) or someone rejects it, or it times out. A rule's verdict, its
 * approvers and the time waited are reported for the recording. Tool annotations for conditions come from the
 * connection's tools/list results, as the server last declared them.
 *
 * The client's answer to a question the server asked during a call (an elicitation, in either era: a legacy
 * client's response, a 2026-07-28 client's MRTR `inputResponses`) judges the call again, with the answer in
 * `inputResponses`: when that changes the decision to deny (or review, which cannot start mid-call), the server gets
 * an error instead of the answer, and the call is refused to the client and cancelled upstream.
 */
export class GuardStage implements Stage, StageHandlers {
  readonly name = 'guard';
  readonly #handlers = inspectWith(this);
  /** Without pinning: tool name → its annotations, from the latest tools/list on any of the connection's sessions. */
  readonly #annotations = new Map<string, Record<string, unknown>>();

  constructor(private readonly o: GuardOptions) {}

  /** A stage only when it could decide anything: rules exist, or the connection's default is not allow. */
  static when(o: GuardOptions): GuardStage | undefined {
    return o.rules.size > 0 || o.defaults.default !== 'allow' ? new GuardStage(o) : undefined;
  }

  /** Without pins, the annotations rules may read are learnt from the server's tool lists. */
  onList(kind: ListKind, _response: JsonRpcResponse, items: readonly unknown[]): undefined {
    if (this.o.pinned === undefined && kind === 'tools') this.#learnTools(items);
    return undefined;
  }

  inspect(message: JsonRpcMessage, ctx: MessageContext): StageVerdict {
    const asked = ctx.request;
    if (ctx.direction === 'toServer' && ctx.madeFor !== undefined && asked !== undefined && inputMethods.has(asked.method) && isResponse(message)) {
      const calls = ctx.madeFor;
      const pinned = this.o.pinned;
      // Without the pins read yet, a rule about annotations would see none: read first.
      const unread =
        pinned !== undefined &&
        calls.some((c) => c.method === 'tools/call' && typeof c.params?.name === 'string' && pinned.annotations(c.params.name) === undefined);
      if (unread) return pinned.load().then(() => this.#judgeAnswer(message, asked, calls, ctx));
      return this.#judgeAnswer(message, asked, calls, ctx);
    }
    return this.#handlers(message, ctx);
  }

  onRequest(request: JsonRpcRequest, ctx: MessageContext): Verdict | undefined | Promise<Verdict | undefined> {
    return this.#withAnnotations(request, () => this.#decide(request, ctx));
  }

  /** Without the pins read yet, a rule about annotations would see none: they are read first, never decided without. */
  #withAnnotations(request: JsonRpcRequest, decide: () => Verdict | undefined): Verdict | undefined | Promise<Verdict | undefined> {
    const pinned = this.o.pinned;
    const tool = request.method === 'tools/call' ? request.params?.name : undefined;
    if (pinned !== undefined && typeof tool === 'string' && pinned.annotations(tool) === undefined) return pinned.load().then(decide);
    return decide();
  }

  #annotationsOf(): (tool: string) => Record<string, unknown> | undefined {
    return this.o.pinned === undefined ? (tool: string) => this.#annotations.get(tool) : (tool: string) => this.o.pinned!.annotations(tool);
  }

  /**
   * The client answered `asked`, a question the server put while working on one of `calls` (usually the only call in
   * flight; when several were, which one asked is not known, and each is judged: failing closed). Each is judged
   * again with the answer; only a change of decision acts (a call's own verdict stands otherwise, a review already
   * approved). A call that the answer makes denied is refused and cancelled; the server gets an error for its question.
   */
  #judgeAnswer(answer: JsonRpcResponse, asked: JsonRpcRequest, calls: readonly JsonRpcRequest[], ctx: MessageContext): Verdict | undefined {
    if (answer.result === undefined) return undefined;
    const annotationsOf = this.#annotationsOf();
    const given = [{ method: asked.method, result: answer.result }];
    let allowedBy: string | undefined;
    let refused: { call: JsonRpcRequest; decision: Decision; response: JsonRpcResponse } | undefined;
    for (const call of calls) {
      const before = this.o.rules.decide(requestFacts(call, ctx.session, annotationsOf), this.o.defaults);
      const after = this.o.rules.decide(requestFacts(call, ctx.session, annotationsOf, given), this.o.defaults);
      if (after.action === before.action && after.rule === before.rule) continue;
      if (after.action === 'allow') {
        allowedBy ??= after.rule;
        continue;
      }
      const decision: Decision =
        after.action === 'deny'
          ? after
          : {
              ...after,
              action: 'deny',
              message: `the rule holds the call for review once the client answered ${asked.method}, and a review cannot start in the middle of a call`,
            };
      const verdict = this.#deny(call, decision, ctx);
      const response = verdict.action === 'answer' && verdict.message !== undefined ? verdict.message : errorResponse(call.id, ErrorCode.Denied, 'Denied');
      ctx.session.refusePending(call.id, response);
      refused ??= { call, decision: after, response };
    }
    if (refused !== undefined)
      return {
        action: 'pass',
        message: errorResponse(answer.id, ErrorCode.Denied, refused.response.error?.message ?? 'Denied', { gateway: 'portcullis', stage: this.name }),
        details: { rule: refused.decision.rule ?? 'default', action: refused.decision.action === 'deny' ? 'deny' : 'refused', answerTo: asked.method },
      };
    return allowedBy === undefined ? undefined : { action: 'pass', details: { rule: allowedBy, action: 'allow', answerTo: asked.method } };
  }

  #decide(request: JsonRpcRequest, ctx: MessageContext): Verdict | undefined {
    const facts = requestFacts(request, ctx.session, this.#annotationsOf());
    const decision = this.o.rules.decide(facts, this.o.defaults);
    switch (decision.action) {
      case 'allow':
        return decision.rule === undefined ? undefined : { action: 'pass', details: { rule: decision.rule, action: 'allow' } };
      case 'deny':
        return this.#deny(request, decision, ctx);
      case 'review':
        return this.#hold(request, decision, ctx, facts);
    }
  }

  #learnTools(tools: readonly unknown[]): void {
    for (const t of tools as Array<{ name?: unknown; annotations?: unknown }>) {
      if (typeof t?.name !== 'string') continue;
      const a = t.annotations;
      this.#annotations.set(t.name, a !== null && typeof a === 'object' && !Array.isArray(a) ? (a as Record<string, unknown>) : {});
    }
    // Bounded: a server listing an endless number of tools cannot grow this without limit.
    while (this.#annotations.size > 10_000) this.#annotations.delete(this.#annotations.keys().next().value!);
  }

  #deny(request: JsonRpcRequest, decision: Decision, ctx: MessageContext): Verdict {
    const by = decision.rule === undefined ? `connection '${ctx.session.connection}' denies calls no rule allows` : `rule '${decision.rule}'`;
    const why =
      decision.message ??
      (decision.error === undefined ? 'this call is not allowed' : `the rule's condition could not be evaluated on this call (${decision.error})`);
    return {
      action: 'answer',
      reason: `denied by ${by}${decision.error ? ` (condition failed: ${decision.error})` : ''}`,
      details: { rule: decision.rule ?? 'default', action: 'deny' },
      message: errorResponse(request.id, ErrorCode.Denied, `Denied by ${by}: ${why}`, { gateway: 'portcullis', stage: this.name, rule: decision.rule ?? null }),
    };
  }

  #hold(request: JsonRpcRequest, decision: Decision, ctx: MessageContext, facts: RequestFacts): Verdict {
    const review = decision.review!;
    const rule = decision.rule ?? 'default';
    const refuse = (message: string, details?: Record<string, unknown>): Verdict => ({
      action: 'answer',
      reason: message,
      ...(details ? { details } : {}),
      message: errorResponse(request.id, ErrorCode.Denied, message, { gateway: 'portcullis', stage: this.name, rule, ...details }),
    });
    if (this.o.reviews === undefined)
      return refuse(`Rule '${rule}' holds this call for review, but reviews need the store and recording is off; the call is refused`);
    const started = Date.now();
    const held = this.o.reviews.hold({
      sessionId: ctx.session.id,
      connection: ctx.session.connection,
      identity: ctx.session.identity,
      method: request.method,
      target: targetOf(facts),
      // Approvers see the name the caller used on a virtual server too (a resource keeps its own URI there).
      ...(facts.virtual.server === '' ? {} : { virtual: { server: facts.virtual.server, target: facts.virtual.tool || facts.virtual.prompt || undefined } }),
      params: this.o.paramsForReview(request),
      digest: requestDigest(request.method, request.params),
      rule,
      approvers: review.approvers ?? [],
      approvals: review.approvals,
      timeoutMs: review.timeoutMs ?? this.o.reviewTimeoutMs,
      signal: ctx.session.cancellation(request.id),
    });
    const verdictOf = (outcome: ReviewOutcome): Verdict => {
      const details = {
        rule,
        review: held.id,
        waitedMs: Date.now() - started,
        status: outcome.review?.status ?? 'unstored',
        approvers: (outcome.review?.approvals ?? []).map((a) => a.email ?? a.subject),
      };
      if (outcome.released) return { action: 'pass', details: { ...details, action: 'approved' } };
      const rejectedBy = outcome.review?.status === 'rejected' ? (outcome.review.deciderEmail ?? outcome.review.deciderSubject) : undefined;
      return refuse(outcome.message, { ...details, action: 'refused', ...(rejectedBy ? { rejectedBy } : {}) });
    };
    return {
      action: 'hold',
      reason: `held for review ${held.id} by rule '${rule}': ${review.approvals > 1 ? `${review.approvals} approvals` : 'an approval'} from ${(review.approvers ?? []).join(', ')} needed`,
      until: held.outcome.then(verdictOf),
    };
  }
}
