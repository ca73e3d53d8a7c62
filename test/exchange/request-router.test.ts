import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonRpcNotification, JsonRpcRequest, RequestId } from '../../src/protocol/jsonrpc.js';
import { RequestRouter } from '../../src/exchange/request-router.js';

/** The request router on its own: ids renumbered both ways, progress tokens, which client request a server message belongs to. */

function call(id: RequestId, progressToken?: string | number): JsonRpcRequest {
  const params: Record<string, unknown> = { name: 'echo' };
  if (progressToken !== undefined) params._meta = { progressToken };
  return { jsonrpc: '2.0', id, method: 'tools/call', params };
}

function progress(token: string | number): JsonRpcNotification {
  return { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 1 } };
}

describe('RequestRouter', () => {
  it('renumbers client requests for the server and finds them again by the server id, once', () => {
    const router = new RequestRouter();
    const a = router.toServer(call('a'));
    const b = router.toServer(call(7));
    assert.notEqual(a, b);
    assert.equal(router.serverIdOf('a'), a);
    assert.equal(router.pending, 2);
    assert.equal(router.answered(b)?.originalId, 7);
    assert.equal(router.answered(b), undefined, 'a second answer to the same request is not pending');
    assert.equal(router.answered('portcullis-1'), undefined, 'a string id is never a renumbered client request');
    assert.equal(router.pending, 1);
  });

  it('the same id from the client as a string and as a number are two requests', () => {
    const router = new RequestRouter();
    const asString = router.toServer(call('1'));
    const asNumber = router.toServer(call(1));
    assert.equal(router.serverIdOf('1'), asString);
    assert.equal(router.serverIdOf(1), asNumber);
  });

  it('routes progress by its token to the request that sent it, and forgets the token once the request is answered', () => {
    const router = new RequestRouter();
    const first = router.toServer(call('first', 'tok'));
    router.toServer(call('second', 42));
    assert.equal(router.relatedToNotification(progress('tok')), 'first');
    assert.equal(router.relatedToNotification(progress(42)), 'second');
    assert.equal(router.relatedToNotification(progress('42')), undefined, "a string token is not the number's");
    router.answered(first);
    assert.equal(router.relatedToNotification(progress('tok')), 'second', 'with the token gone, progress goes to the only call in flight');
  });

  it('gives a log message or a server request to the only call in flight, and to none when there are several', () => {
    const router = new RequestRouter();
    const log: JsonRpcNotification = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } };
    const listChanged: JsonRpcNotification = { jsonrpc: '2.0', method: 'notifications/tools/list_changed' };
    assert.equal(router.relatedToServerRequest(), undefined);
    router.toServer(call('only'));
    assert.equal(router.relatedToNotification(log), 'only');
    assert.equal(router.relatedToServerRequest(), 'only');
    assert.equal(router.relatedToNotification(listChanged), undefined, 'a list change belongs to no request');
    router.toServer(call('other'));
    assert.equal(router.relatedToNotification(log), undefined);
    assert.equal(router.relatedToServerRequest(), undefined);
  });

  it('a withdrawn client request is forgotten with its progress token', () => {
    const router = new RequestRouter();
    const mapped = router.toServer(call('w', 'tok'));
    assert.equal(router.withdrawn('w')?.mappedId, mapped);
    assert.equal(router.withdrawn('w'), undefined);
    assert.equal(router.answered(mapped), undefined, "the server's late answer finds nothing");
    assert.equal(router.relatedToNotification(progress('tok')), undefined);
  });

  it('renumbers server requests for the client; a response, peeked then taken, or a server cancellation finds them', () => {
    const router = new RequestRouter();
    const sampling: JsonRpcRequest = { jsonrpc: '2.0', id: 5, method: 'sampling/createMessage' };
    const clientSide = router.toClient(sampling);
    assert.equal(router.serverRequestOf(clientSide)?.request, sampling, 'peeking leaves it pending');
    assert.equal(router.serverRequestOf(clientSide)?.madeFor, undefined, 'no call was in flight');
    assert.equal(router.answeredByClient(clientSide)?.originalId, 5);
    assert.equal(router.answeredByClient(clientSide), undefined);
    const roots = router.toClient({ jsonrpc: '2.0', id: 'r', method: 'roots/list' });
    assert.equal(router.withdrawnByServer('r')?.mappedId, roots);
    assert.equal(router.pending, 0);
  });

  it('a server request is tied to the calls in flight when it was made (guardrails judge its answer in their light)', () => {
    const router = new RequestRouter();
    const first = call('c1');
    router.toServer(first);
    const asked = router.toClient({ jsonrpc: '2.0', id: 9, method: 'elicitation/create' });
    assert.deepEqual(router.serverRequestOf(asked)?.madeFor, [first]);
    const second = call('c2');
    router.toServer(second);
    const ambiguous = router.toClient({ jsonrpc: '2.0', id: 10, method: 'elicitation/create' });
    assert.deepEqual(router.serverRequestOf(ambiguous)?.madeFor, [first, second], 'two calls in flight: either may have asked');
  });

  it('drain hands back the client requests still owed an answer, oldest first, and forgets everything', () => {
    const router = new RequestRouter();
    router.toServer(call('x', 'tok'));
    router.toServer(call('y'));
    router.toClient({ jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.deepEqual(
      router.drain().map((p) => p.originalId),
      ['x', 'y'],
    );
    assert.equal(router.pending, 0);
    assert.equal(router.relatedToNotification(progress('tok')), undefined);
  });
});
