import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { MessageContext, SessionInfo, Stage, StageTrace, Verdict } from '../../src/pipeline/stage.js';
import type { JsonRpcRequest } from '../../src/protocol/jsonrpc.js';

/** The runner tells a message's watcher (tracing) what the stages did; the stages never see it. */

const session = { id: 's', connection: 'c', identity: { subject: 'u', issuer: 'i', groups: [] } } as unknown as SessionInfo;
const call: JsonRpcRequest = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } };

function watcher(): StageTrace & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    stage: (name, verdict, startedAt) => {
      assert.ok(startedAt > 0 && startedAt <= performance.now());
      seen.push(`${name}:${verdict.action}`);
    },
    held: (name, reason, settled, startedAt) => {
      assert.ok(startedAt <= performance.now());
      seen.push(`held ${name} (${reason}) → ${settled?.action}`);
    },
  };
}

const stage = (name: string, inspect: Stage['inspect']): Stage => ({ name, inspect });

describe('pipeline: the stage watcher', () => {
  it('hears of the stages that gave a verdict, not of those that let the message through without a word', () => {
    const trace = watcher();
    const stages = [stage('quiet', () => undefined), stage('rule', () => ({ action: 'pass', details: { rule: 'r' } })), stage('last', () => undefined)];
    const outcome = new Pipeline(stages).run(call, { session, direction: 'toServer', trace } as MessageContext);
    assert.deepEqual(outcome, { action: 'forward', message: call });
    assert.deepEqual(trace.seen, ['rule:pass']);
  });

  it('hears of a hold, its wait, and the stages before it judging again', async () => {
    const trace = watcher();
    let release!: (v: Verdict) => void;
    const until = new Promise<Verdict>((r) => (release = r));
    let holds = 0;
    const stages = [
      stage('first', () => ({ action: 'pass', details: { rule: 'again' } })),
      stage('guard', () => (holds++ === 0 ? { action: 'hold', until, reason: 'review' } : undefined)),
    ];
    const outcome = new Pipeline(stages).run(call, { session, direction: 'toServer', trace } as MessageContext);
    assert.ok(outcome instanceof Promise);
    release({ action: 'pass', details: { action: 'approved' } });
    assert.equal((await outcome).action, 'forward');
    assert.deepEqual(trace.seen, ['first:pass', 'guard:hold', 'held guard (review) → pass', 'first:pass']);
  });

  it('costs nothing without a watcher: the same outcome', () => {
    const stages = [stage('rule', () => ({ action: 'answer', reason: 'no' }))];
    assert.deepEqual(new Pipeline(stages).run(call, { session, direction: 'toServer' }), { action: 'answer' });
  });
});
