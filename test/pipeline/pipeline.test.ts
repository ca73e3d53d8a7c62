import { sessionInfo } from '../helpers/session-info.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { type MessageContext, pass, type Stage, type Verdict } from '../../src/pipeline/stage.js';
import type { Direction } from '../../src/core/direction.js';
import type { VerdictEvent } from '../../src/core/verdict-event.js';
import { errorResponse, type JsonRpcMessage, type JsonRpcRequest } from '../../src/protocol/jsonrpc.js';

/** The pipeline as a filter chain: order, verdicts, holds, and staying synchronous when it can. */

const session = sessionInfo('sess-1', 'conn-a', { subject: 'alice', issuer: 'https://idp.test', groups: ['eng'] });
const ctx = (direction: Direction, request?: JsonRpcRequest): MessageContext => (request ? { session, direction, request } : { session, direction });
const call: JsonRpcRequest = { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } };

/** A stage that records that it saw a message, then answers with `verdict` (a function of the message). */
function stage(name: string, seen: string[], verdict: (m: JsonRpcMessage) => ReturnType<Stage['inspect']> = () => undefined): Stage {
  return {
    name,
    inspect(message) {
      seen.push(name);
      return verdict(message);
    },
  };
}

/** A promise settled from outside, for holds. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function collect(): { events: VerdictEvent[]; contexts: MessageContext[]; onVerdict: (e: VerdictEvent, c: MessageContext) => void } {
  const events: VerdictEvent[] = [];
  const contexts: MessageContext[] = [];
  return { events, contexts, onVerdict: (e, c) => (events.push(e), contexts.push(c)) };
}

const withArg = (m: JsonRpcMessage, key: string, value: string): JsonRpcRequest => {
  const r = m as JsonRpcRequest;
  const args = (r.params?.arguments ?? {}) as Record<string, unknown>;
  return { ...r, params: { ...r.params, arguments: { ...args, [key]: value } } };
};

describe('Pipeline', () => {
  it('runs stages in order toServer and in reverse toClient', () => {
    const seen: string[] = [];
    const p = new Pipeline([stage('a', seen), stage('b', seen), stage('c', seen)]);
    assert.deepEqual(p.stageNames, ['a', 'b', 'c']);
    p.run(call, ctx('toServer'));
    assert.deepEqual(seen, ['a', 'b', 'c']);
    seen.length = 0;
    p.run({ jsonrpc: '2.0', id: 11, result: {} }, ctx('toClient', call));
    assert.deepEqual(seen, ['c', 'b', 'a']);
  });

  it('forwards the very same message when every stage passes, with no verdict events', () => {
    const seen: string[] = [];
    const { events, onVerdict } = collect();
    const p = new Pipeline([stage('undef', seen), stage('pass', seen, () => pass), stage('same', seen, (m) => ({ action: 'pass', message: m }))], onVerdict);
    const out = p.run(call, ctx('toServer'));
    assert.ok(!(out instanceof Promise));
    assert.equal(out.action, 'forward');
    assert.ok(out.action === 'forward' && out.message === call);
    assert.deepEqual(events, []);
  });

  it('an empty pipeline forwards', () => {
    const out = new Pipeline([]).run(call, ctx('toServer'));
    assert.deepEqual(out, { action: 'forward', message: call });
  });

  it('a rewrite is what later stages see and what is forwarded', () => {
    const seenByB: JsonRpcMessage[] = [];
    const { events, onVerdict } = collect();
    const p = new Pipeline(
      [
        { name: 'a', inspect: (m) => ({ action: 'pass', message: withArg(m, 'a', '1') }) },
        { name: 'b', inspect: (m) => (seenByB.push(m), { action: 'pass', message: withArg(m, 'b', '2') }) },
      ],
      onVerdict,
    );
    const out = p.run(call, ctx('toServer'));
    assert.ok(!(out instanceof Promise) && out.action === 'forward');
    assert.deepEqual((seenByB[0] as JsonRpcRequest).params!.arguments, { text: 'hi', a: '1' });
    assert.deepEqual((out.message as JsonRpcRequest).params!.arguments, { text: 'hi', a: '1', b: '2' });
    assert.deepEqual(call.params!.arguments as object, { text: 'hi' }, 'the original is untouched');
    assert.deepEqual(
      events.map((e) => [e.stage, e.action, e.direction, e.messageId, e.method]),
      [
        ['a', 'rewrite', 'toServer', 11, 'tools/call'],
        ['b', 'rewrite', 'toServer', 11, 'tools/call'],
      ],
    );
  });

  it('an answer stops the run: later stages never see the message', () => {
    const seen: string[] = [];
    const { events, contexts, onVerdict } = collect();
    const reply = errorResponse(11, -31003, 'no');
    const p = new Pipeline(
      [stage('a', seen), stage('deny', seen, () => ({ action: 'answer', message: reply, reason: 'policy says no' })), stage('c', seen)],
      onVerdict,
    );
    const c = ctx('toServer');
    const out = p.run(call, c);
    assert.deepEqual(seen, ['a', 'deny']);
    assert.deepEqual(out, { action: 'answer', message: reply });
    assert.deepEqual(events, [{ stage: 'deny', action: 'answer', reason: 'policy says no', direction: 'toServer', messageId: 11, method: 'tools/call' }]);
    assert.equal(contexts[0], c, 'the callback gets the run’s context');
  });

  it('an answer without a message drops a notification', () => {
    const { events, onVerdict } = collect();
    const p = new Pipeline([{ name: 'drop', inspect: () => ({ action: 'answer' }) }], onVerdict);
    const out = p.run({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }, ctx('toClient'));
    assert.deepEqual(out, { action: 'answer' });
    assert.deepEqual(events, [{ stage: 'drop', action: 'answer', direction: 'toClient', method: 'notifications/progress' }]);
  });

  it('toClient verdicts carry the response id and no method', () => {
    const { events, onVerdict } = collect();
    const p = new Pipeline([{ name: 'mask', inspect: (m) => ({ action: 'pass', message: { ...m, result: { masked: true } } as JsonRpcMessage }) }], onVerdict);
    p.run({ jsonrpc: '2.0', id: 'r1', result: { secret: 'x' } }, ctx('toClient', call));
    assert.deepEqual(events, [{ stage: 'mask', action: 'rewrite', direction: 'toClient', messageId: 'r1' }]);
  });

  it('is synchronous when every stage is: run() returns an outcome, not a promise', () => {
    const seen: string[] = [];
    const p = new Pipeline([
      stage('a', seen),
      stage('b', seen, (m) => ({ action: 'pass', message: withArg(m, 'x', 'y') })),
      stage('c', seen, () => ({ action: 'answer' })),
    ]);
    const out = p.run(call, ctx('toServer'));
    assert.ok(!(out instanceof Promise));
    assert.equal(typeof (out as { then?: unknown }).then, 'undefined');
    assert.deepEqual(out, { action: 'answer' });
  });

  it('an async stage makes the run asynchronous and later stages still run', async () => {
    const seen: string[] = [];
    const p = new Pipeline([
      stage('sync', seen),
      stage('async', seen, async (m) => ({ action: 'pass', message: withArg(m, 'async', 'yes') })),
      stage('after', seen),
    ]);
    const result = p.run(call, ctx('toServer'));
    assert.ok(result instanceof Promise);
    assert.deepEqual(seen, ['sync', 'async'], 'later stages wait for the promise');
    const out = await result;
    assert.deepEqual(seen, ['sync', 'async', 'after']);
    assert.ok(out.action === 'forward');
    assert.equal(((out.message as JsonRpcRequest).params!.arguments as Record<string, unknown>).async, 'yes');
  });

  it('an async stage resolving to undefined passes the message on', async () => {
    const seen: string[] = [];
    const p = new Pipeline([stage('async', seen, async () => undefined), stage('after', seen)]);
    assert.deepEqual(await p.run(call, ctx('toServer')), { action: 'forward', message: call });
    assert.deepEqual(seen, ['async', 'after']);
  });

  it('an async answer stops the run', async () => {
    const seen: string[] = [];
    const p = new Pipeline([stage('async', seen, async () => ({ action: 'answer', reason: 'later no' })), stage('after', seen)]);
    assert.deepEqual(await p.run(call, ctx('toServer')), { action: 'answer' });
    assert.deepEqual(seen, ['async']);
  });

  it('a hold waits; settling to pass continues with the later stages', async () => {
    const seen: string[] = [];
    const { events, onVerdict } = collect();
    const until = deferred<Verdict>();
    const p = new Pipeline(
      [stage('a', seen), stage('review', seen, () => ({ action: 'hold', until: until.promise, reason: 'needs review' })), stage('c', seen)],
      onVerdict,
    );
    const result = p.run(call, ctx('toServer'));
    assert.ok(result instanceof Promise);
    let settled = false;
    void result.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, 'still held');
    assert.deepEqual(seen, ['a', 'review']);
    assert.deepEqual(events, [{ stage: 'review', action: 'hold', reason: 'needs review', direction: 'toServer', messageId: 11, method: 'tools/call' }]);
    until.resolve(pass);
    const out = await result;
    assert.deepEqual(out, { action: 'forward', message: call });
    assert.deepEqual(seen, ['a', 'review', 'a', 'c'], 'the stages before the hold judge it again after it');
    assert.equal(events.length, 1, 'an unchanged pass emits nothing more');
  });

  it('a held message that an earlier stage refuses by the time it is released goes no further', async () => {
    const seen: string[] = [];
    let allowed = true;
    const until = deferred<Verdict>();
    const p = new Pipeline([
      stage('access', seen, () => (allowed ? undefined : { action: 'answer', reason: 'no longer allowed' })),
      stage('review', seen, () => ({ action: 'hold', until: until.promise })),
      stage('after', seen),
    ]);
    const result = p.run(call, ctx('toServer'));
    allowed = false;
    until.resolve(pass);
    assert.deepEqual(await result, { action: 'answer' });
    assert.deepEqual(seen, ['access', 'review', 'access']);
  });

  it('a hold settling to a rewrite forwards the rewrite through the later stages', async () => {
    const seenByC: JsonRpcMessage[] = [];
    const { events, onVerdict } = collect();
    const p = new Pipeline(
      [
        { name: 'review', inspect: (m) => ({ action: 'hold', until: Promise.resolve({ action: 'pass', message: withArg(m, 'approved', 'by bob') }) }) },
        { name: 'c', inspect: (m) => void seenByC.push(m) },
      ],
      onVerdict,
    );
    const out = await p.run(call, ctx('toServer'));
    assert.ok(out.action === 'forward');
    assert.equal(((out.message as JsonRpcRequest).params!.arguments as Record<string, unknown>).approved, 'by bob');
    assert.equal(seenByC[0], out.message);
    assert.deepEqual(
      events.map((e) => `${e.stage}:${e.action}`),
      ['review:hold', 'review:rewrite'],
    );
  });

  it('a hold settling to an answer stops the run', async () => {
    const seen: string[] = [];
    const { events, onVerdict } = collect();
    const reply = errorResponse(11, -31003, 'rejected by reviewer');
    const p = new Pipeline(
      [stage('review', seen, () => ({ action: 'hold', until: Promise.resolve({ action: 'answer', message: reply, reason: 'rejected' }) })), stage('c', seen)],
      onVerdict,
    );
    assert.deepEqual(await p.run(call, ctx('toServer')), { action: 'answer', message: reply });
    assert.deepEqual(seen, ['review']);
    assert.deepEqual(
      events.map((e) => `${e.stage}:${e.action}:${e.reason}`),
      ['review:hold:undefined', 'review:answer:rejected'],
    );
  });

  it('a hold may settle to another hold (escalation), each one reported', async () => {
    const seen: string[] = [];
    const { events, onVerdict } = collect();
    const second: Verdict = { action: 'hold', reason: 'escalated', until: Promise.resolve(pass) };
    const p = new Pipeline([stage('review', seen, () => ({ action: 'hold', reason: 'first', until: Promise.resolve(second) })), stage('c', seen)], onVerdict);
    assert.deepEqual(await p.run(call, ctx('toServer')), { action: 'forward', message: call });
    assert.deepEqual(seen, ['review', 'c']);
    assert.deepEqual(
      events.map((e) => e.reason),
      ['first', 'escalated'],
    );
  });

  it('a hold that never stops holding is cut off with an error', async () => {
    // `until` is a getter so that each next hold is made only when the pipeline waits for it.
    let made = 0;
    const forever = (): Verdict => {
      made++;
      return {
        action: 'hold',
        get until() {
          return Promise.resolve(forever());
        },
      };
    };
    const p = new Pipeline([{ name: 'loop', inspect: forever }]);
    await assert.rejects(Promise.resolve(p.run(call, ctx('toServer'))), /stage loop held a message more than 16 times/);
    assert.ok(made >= 16 && made <= 20, `followed ${made} holds`);
  });

  it('a hold whose promise rejects rejects the run', async () => {
    const seen: string[] = [];
    const p = new Pipeline([stage('review', seen, () => ({ action: 'hold', until: Promise.reject(new Error('store down')) })), stage('c', seen)]);
    await assert.rejects(Promise.resolve(p.run(call, ctx('toServer'))), /store down/);
    assert.deepEqual(seen, ['review']);
  });

  it('a second hold after the first settles is awaited too', async () => {
    const seen: string[] = [];
    const { events, onVerdict } = collect();
    const first = deferred<Verdict>();
    const second = deferred<Verdict>();
    const p = new Pipeline(
      [
        stage('one', seen, () => ({ action: 'hold', until: first.promise })),
        stage('mid', seen),
        stage('two', seen, () => ({ action: 'hold', until: second.promise })),
        stage('last', seen),
      ],
      onVerdict,
    );
    const result = p.run(call, ctx('toServer'));
    first.resolve(pass);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, ['one', 'mid', 'two']);
    second.resolve({ action: 'answer', reason: 'no' });
    assert.deepEqual(await result, { action: 'answer' });
    assert.deepEqual(seen, ['one', 'mid', 'two']);
    assert.deepEqual(
      events.map((e) => `${e.stage}:${e.action}`),
      ['one:hold', 'two:hold', 'two:answer'],
    );
  });

  it('holds toClient follow the reverse order', async () => {
    const seen: string[] = [];
    const p = new Pipeline([stage('a', seen), stage('b', seen, () => ({ action: 'hold', until: Promise.resolve(pass) })), stage('c', seen)]);
    await p.run({ jsonrpc: '2.0', id: 11, result: {} }, ctx('toClient', call));
    assert.deepEqual(seen, ['c', 'b', 'a']);
  });

  it('a throwing stage throws out of run()', () => {
    const p = new Pipeline([
      {
        name: 'bad',
        inspect: () => {
          throw new Error('stage bug');
        },
      },
    ]);
    assert.throws(() => p.run(call, ctx('toServer')), /stage bug/);
  });
});
