import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonRpcNotification, JsonRpcRequest, RequestId } from '../../src/protocol/jsonrpc.js';
import { HeldRequests } from '../../src/exchange/held-requests.js';
import { waitFor } from '../helpers/wait.js';

/** Held requests on their own: the keep-alive a held request's client gets, and giving up on it. */

class Hooks {
  readonly holds: RequestId[] = [];
  readonly notes: Array<{ note: JsonRpcNotification; clientId: RequestId }> = [];
  hold(clientId: RequestId): void {
    this.holds.push(clientId);
  }
  progress(note: JsonRpcNotification, clientId: RequestId): void {
    this.notes.push({ note, clientId });
  }
}

function call(id: RequestId, progressToken?: string | number): JsonRpcRequest {
  const params: Record<string, unknown> = { name: 'deploy' };
  if (progressToken !== undefined) params._meta = { progressToken };
  return { jsonrpc: '2.0', id, method: 'tools/call', params };
}

describe('HeldRequests', () => {
  it('a request merely in an asynchronous stage does not keep its client waiting; a hold does, once', () => {
    const hooks = new Hooks();
    const held = new HeldRequests(60_000, hooks);
    held.inStage(call(1));
    assert.deepEqual(hooks.holds, []);
    held.holding(1, 'waiting for a review');
    held.holding(1, 'waiting for a review');
    assert.deepEqual(hooks.holds, [1]);
    assert.equal(hooks.notes.length, 0, 'no progress token, no progress');
    held.released(1);
    assert.equal(held.size, 0);
  });

  it('a hold said before the request reaches its stage keeps the client waiting once it does', () => {
    const hooks = new Hooks();
    const held = new HeldRequests(60_000, hooks);
    held.holding('h', 'review');
    assert.deepEqual(hooks.holds, []);
    held.inStage(call('h'));
    assert.deepEqual(hooks.holds, ['h']);
    held.released('h');
  });

  it('a client that sent a progress token is told why it waits, now and at the interval, until the request is released', async () => {
    const hooks = new Hooks();
    const held = new HeldRequests(5, hooks);
    held.inStage(call(3, 'tok'));
    held.holding(3, 'an approver must review deploy');
    assert.equal(hooks.notes.length, 1);
    assert.deepEqual(hooks.notes[0], {
      clientId: 3,
      note: {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: 'tok', progress: 1, message: 'Waiting: an approver must review deploy' },
      },
    });
    await waitFor(() => hooks.notes.length >= 3, 'progress at the interval');
    assert.deepEqual(
      hooks.notes.map((n) => n.note.params?.progress),
      hooks.notes.map((_, i) => i + 1),
      'progress counts up',
    );
    held.released(3);
    const told = hooks.notes.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(hooks.notes.length, told, 'nothing more once released');
  });

  it("a client's cancellation of a held request aborts its stage's signal and is reported as settled-cancelled", () => {
    const held = new HeldRequests(60_000, new Hooks());
    const signal = held.cancellation(9);
    held.inStage(call(9));
    const cancel: JsonRpcNotification = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 9 } };
    assert.equal(held.cancelledByClient({ ...cancel, params: { requestId: '9' } }), undefined, "the string '9' is not the request 9");
    assert.equal(held.cancelledByClient(cancel), 9);
    assert.equal(signal.aborted, true);
    assert.equal(held.settled(9), true, 'settled after a cancellation: nothing may go on');
    assert.equal(held.size, 0);
    assert.equal(held.settled(9), false);
  });

  it('a request decided without cancellation settles as not cancelled', () => {
    const held = new HeldRequests(60_000, new Hooks());
    held.cancellation('ok');
    assert.equal(held.settled('ok'), false);
  });

  it('the session ending aborts every held request and stops every keep-alive; a signal asked for afterwards is aborted at once', async () => {
    const hooks = new Hooks();
    const held = new HeldRequests(5, hooks);
    const signal = held.cancellation(1);
    held.inStage(call(1, 7));
    held.holding(1, undefined);
    assert.equal(hooks.notes[0]?.note.params?.message, 'Waiting: held by the gateway');
    held.close('upstream closed');
    assert.equal(signal.aborted, true);
    assert.match(String((signal.reason as Error).message), /session ended: upstream closed/);
    const told = hooks.notes.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(hooks.notes.length, told);
    const late = held.cancellation(2, 'session ended: gone');
    assert.equal(late.aborted, true);
  });
});
