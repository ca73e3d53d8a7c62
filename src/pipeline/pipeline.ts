import type { JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import type { MessageContext, Outcome, Stage, Verdict } from './stage.js';

/**
 * Runs stages over a message. Synchronous whenever every stage is, so the common path allocates no
 * promise; a stage that returns a promise or holds makes the rest of the run asynchronous.
 */
export class Pipeline {
  readonly #forward: readonly Stage[];
  readonly #reverse: readonly Stage[];

  constructor(
    stages: readonly Stage[],
    private readonly onVerdict: (event: VerdictEvent, ctx: MessageContext) => void = () => {},
  ) {
    this.#forward = stages;
    this.#reverse = [...stages].reverse();
  }

  get stageNames(): string[] {
    return this.#forward.map((s) => s.name);
  }

  run(message: JsonRpcMessage, ctx: MessageContext): Outcome | Promise<Outcome> {
    const stages = ctx.direction === 'toServer' ? this.#forward : this.#reverse;
    return this.#runFrom(stages, 0, message, ctx);
  }

  #runFrom(stages: readonly Stage[], start: number, message: JsonRpcMessage, ctx: MessageContext, end = stages.length): Outcome | Promise<Outcome> {
    let current = message;
    // Tracing on: the one check per stage its absence costs (src/telemetry watches; the stages never know).
    const trace = ctx.trace;
    for (let i = start; i < end; i++) {
      const stage = stages[i]!;
      const startedAt = trace === undefined ? 0 : performance.now();
      const verdict = stage.inspect(current, ctx);
      if (verdict === undefined) continue;
      if (verdict instanceof Promise) {
        return verdict.then((v) => {
          if (trace !== undefined && v !== undefined) trace.stage(stage.name, v, startedAt);
          return this.#settle(stages, i, stage, v, current, ctx, end);
        });
      }
      if (trace !== undefined) trace.stage(stage.name, verdict, startedAt);
      const settled = this.#apply(stage, verdict, current, ctx);
      if (settled === 'hold') {
        return this.#settle(stages, i, stage, verdict, current, ctx, end);
      }
      if (settled.action === 'answer') return settled;
      current = settled.message;
    }
    return { action: 'forward', message: current };
  }

  /** Applies a settled verdict; 'hold' means the caller must wait for it. */
  #apply(stage: Stage, verdict: Verdict, message: JsonRpcMessage, ctx: MessageContext): Outcome | 'hold' {
    switch (verdict.action) {
      case 'pass':
        if (verdict.message === undefined || verdict.message === message) {
          if (verdict.details !== undefined) this.#emit(stage, 'pass', undefined, message, ctx, false, verdict.details);
          return { action: 'forward', message };
        }
        this.#emit(stage, 'rewrite', undefined, message, ctx, verdict.sensitive, verdict.details);
        return { action: 'forward', message: verdict.message };
      case 'answer':
        this.#emit(stage, 'answer', verdict.reason, message, ctx, false, verdict.details);
        return verdict.message === undefined ? { action: 'answer' } : { action: 'answer', message: verdict.message };
      case 'hold':
        return 'hold';
    }
  }

  async #settle(
    stages: readonly Stage[],
    index: number,
    stage: Stage,
    verdict: Verdict | undefined,
    message: JsonRpcMessage,
    ctx: MessageContext,
    end: number,
  ): Promise<Outcome> {
    let v = verdict;
    const held = v?.action === 'hold';
    const heldAt = held && ctx.trace !== undefined ? performance.now() : 0;
    const reason = v?.action === 'hold' ? v.reason : undefined;
    // A hold may settle to another hold (e.g. a review that escalates); follow it, bounded.
    for (let depth = 0; v?.action === 'hold'; depth++) {
      if (depth > 16) throw new Error(`stage ${stage.name} held a message more than 16 times`);
      this.#emit(stage, 'hold', v.reason, message, ctx);
      v = await v.until;
    }
    if (held) ctx.trace?.held(stage.name, reason, v, heldAt);
    const outcome = v === undefined ? ({ action: 'forward', message } as const) : this.#apply(stage, v, message, ctx);
    if (outcome === 'hold') throw new Error('unreachable: hold after settle');
    if (outcome.action === 'answer') return outcome;
    if (held && index > 0 && ctx.direction === 'toServer') {
      // Time passed while it was held (a review can take minutes): the stages before it judge it again, as it is
      // now (the caller's groups today, a tool quarantined meanwhile), before it goes on.
      const again = await this.#runFrom(stages, 0, outcome.message, ctx, index);
      if (again.action === 'answer') return again;
      return this.#runFrom(stages, index + 1, again.message, ctx, end);
    }
    return this.#runFrom(stages, index + 1, outcome.message, ctx, end);
  }

  #emit(
    stage: Stage,
    action: VerdictEvent['action'],
    reason: string | undefined,
    message: JsonRpcMessage,
    ctx: MessageContext,
    sensitive?: boolean,
    details?: Record<string, unknown>,
  ): void {
    const event: VerdictEvent = { stage: stage.name, action, direction: ctx.direction };
    if (reason !== undefined) event.reason = reason;
    if (sensitive) event.sensitive = true;
    if (details !== undefined) event.details = details;
    if ('id' in message && message.id !== null && message.id !== undefined) event.messageId = message.id;
    if ('method' in message) event.method = message.method;
    this.onVerdict(event, ctx);
  }
}
