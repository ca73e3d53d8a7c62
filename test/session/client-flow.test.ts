import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientFlow, type FlowLimits } from '../../src/session/client-flow.js';
import { waitFor } from '../helpers/wait.js';

/** A flow with a sink backlog the test sets, recording what it told the upstream. */
function flowWith(limits: Partial<FlowLimits> = {}) {
  const calls: string[] = [];
  let sink = 0;
  const flow = new ClientFlow({ backlogBytes: 1000, stallTimeoutMs: 60_000, hardCapBytes: 10_000, ...limits }, () => sink, {
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    stalled: (reason, behind) => calls.push(`stalled (${behind}): ${reason}`),
  });
  return { flow, calls, setSink: (bytes: number) => (sink = bytes) };
}

describe('ClientFlow', () => {
  it('pauses above the backlog and resumes only under half of it', () => {
    const { flow, calls, setSink } = flowWith();
    const left = flow.admit(600);
    setSink(501);
    flow.check();
    assert.deepEqual(calls, ['pause']);
    left();
    assert.deepEqual(calls, ['pause'], '501 bytes still wait: over half the backlog');
    setSink(400);
    flow.check();
    assert.deepEqual(calls, ['pause', 'resume']);
    flow.stop();
  });

  it('counts a message once however often its release is called', () => {
    const { flow } = flowWith();
    const left = flow.admit(300);
    left();
    left();
    assert.equal(flow.backlog, 0);
    flow.stop();
  });

  it('ends a session whose client stays behind past the timeout, saying which limits', async () => {
    const { flow, calls, setSink } = flowWith({ stallTimeoutMs: 200 });
    setSink(5000);
    flow.check();
    await waitFor(() => calls.length === 2, 'the stall', 5000);
    assert.equal(calls[0], 'pause');
    assert.match(
      calls[1]!,
      /^stalled \(client\): the client fell behind: it did not read what was sent; the 5000 bytes waiting for it did not go out within 200 ms \(limits\.slowClientTimeout/,
    );
    assert.equal(flow.paused, true);
  });

  it('ends the session at once past the hard cap (an upstream that cannot be paused)', () => {
    const { flow, calls } = flowWith();
    flow.admit(10_001);
    assert.equal(calls.length, 1);
    assert.match(
      calls[0]!,
      /^stalled \(gateway\): the gateway fell behind: messages waited in its pipeline or for the recording; 10001 bytes waited for it, over the hard cap of 10000 bytes/,
    );
  });

  it('says the client is behind when most of the backlog is written to it and unread', () => {
    const { flow, calls, setSink } = flowWith();
    setSink(9000);
    flow.admit(1001);
    assert.match(calls.at(-1)!, /^stalled \(client\): the client fell behind/);
  });
});
