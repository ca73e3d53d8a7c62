import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ClientDelivery } from '../../src/exchange/client-delivery.js';
import { FailureAnswers } from '../../src/exchange/failure-answers.js';
import { HeldRequests } from '../../src/exchange/held-requests.js';
import { RequestRouter } from '../../src/exchange/request-router.js';
import { ServerForwarding } from '../../src/exchange/server-forwarding.js';
import { WriteAheadTap } from '../../src/exchange/write-ahead-tap.js';
import { ErrorCode, type JsonRpcMessage, type JsonRpcResponse } from '../../src/protocol/jsonrpc.js';
import { UpstreamError } from '../../src/upstream/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { CollectingSink, CollectingUpstream } from './doubles.js';

/** Delivery to the client, forwarding to the server, and the answers failures get, without a gateway (no recording). */

const quiet = pino({ level: 'silent' });

function parts() {
  const tap = new WriteAheadTap(undefined, () => {});
  const sink = new CollectingSink();
  const seen: JsonRpcMessage[] = [];
  const toClient = new ClientDelivery(tap, (m) => seen.push(m));
  toClient.sink = sink;
  const upstream = new CollectingUpstream();
  const sendFailures: UpstreamError[] = [];
  const router = new RequestRouter();
  const held = new HeldRequests(60_000, { hold: () => {}, progress: (note, id) => toClient.deliver(note, id) });
  const toServer = new ServerForwarding(
    upstream,
    tap,
    (m) => seen.push(m),
    (message, clientRequestId, err) => {
      sendFailures.push(err);
      failures.sendFailed(message, clientRequestId, err);
    },
  );
  const failures = new FailureAnswers(router, held, toClient, toServer, quiet);
  return { sink, seen, toClient, upstream, toServer, router, held, failures, sendFailures };
}

describe('ClientDelivery and ServerForwarding', () => {
  it('hand over the exact text they recorded, with the request a message belongs to, and let observers see it', async () => {
    const { sink, seen, toClient, upstream, toServer } = parts();
    let left = 0;
    toClient.deliver({ jsonrpc: '2.0', id: 'a', result: {} }, 'a', undefined, () => left++);
    assert.deepEqual(sink.sent[0], { message: { jsonrpc: '2.0', id: 'a', result: {} }, related: 'a', text: '{"jsonrpc":"2.0","id":"a","result":{}}' });
    assert.equal(left, 1, 'the backlog is told once the edge has it');
    toServer.forward({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await waitFor(() => upstream.sent.length === 1, 'forwarded');
    assert.equal(upstream.sent[0], '{"jsonrpc":"2.0","method":"notifications/initialized"}');
    assert.equal(seen.length, 2);
  });

  it('a client request whose send fails is answered with the upstream error and forgotten', async () => {
    const { sink, upstream, toServer, router, sendFailures } = parts();
    upstream.fail = new UpstreamError('connection refused', false);
    const request = { jsonrpc: '2.0' as const, id: 'call', method: 'tools/call', params: { name: 'echo' } };
    const mapped = router.toServer(request);
    toServer.forward({ ...request, id: mapped }, 'call');
    await waitFor(() => sink.sent.length === 1, 'the error answer');
    const answer = sink.sent[0]!.message as JsonRpcResponse;
    assert.equal(answer.id, 'call');
    assert.equal(answer.error?.code, ErrorCode.UpstreamUnavailable);
    assert.match(answer.error!.message, /connection refused/);
    assert.equal(router.pending, 0);
    assert.equal(sendFailures.length, 1);
  });
});

describe('FailureAnswers', () => {
  it('answers the requests whose answers the link lost, by the ids their clients used', () => {
    const { sink, router, failures } = parts();
    const a = router.toServer({ jsonrpc: '2.0', id: 'a', method: 'tools/call' });
    router.toServer({ jsonrpc: '2.0', id: 'b', method: 'tools/call' });
    failures.answersLost([a, 999], 'stream broke');
    assert.deepEqual(
      sink.sent.map((s) => (s.message as JsonRpcResponse).id),
      ['a'],
    );
    assert.equal(router.pending, 1);
  });

  it('a failure handling a client request answers it and frees its id everywhere', () => {
    const { sink, router, held, failures } = parts();
    const request = { jsonrpc: '2.0' as const, id: 5, method: 'tools/call' };
    held.inStage(request);
    router.toServer(request);
    failures.receiveFailed(request, new RangeError('defect'));
    assert.equal((sink.sent[0]!.message as JsonRpcResponse).error?.code, ErrorCode.InternalError);
    assert.equal(router.pending, 0);
    assert.equal(held.size, 0);
    failures.receiveFailed({ jsonrpc: '2.0', method: 'notifications/initialized' }, new Error('x'));
    assert.equal(sink.sent.length, 1, 'a notification gets no answer');
  });

  it("a stage failing on a server's request answers the server; on a server's response, the client", async () => {
    const { sink, upstream, failures } = parts();
    failures.stageFailed({ jsonrpc: '2.0', id: 3, method: 'sampling/createMessage' }, new Error('x'), 'toClient');
    await waitFor(() => upstream.sent.length === 1, 'the answer to the server');
    assert.match(upstream.sent[0]!, /"id":3,"error"/);
    failures.stageFailed({ jsonrpc: '2.0', id: 'c', result: {} }, new Error('x'), 'toClient');
    assert.equal((sink.sent[0]!.message as JsonRpcResponse).id, 'c');
  });

  it('a stage failing on a client request answers the client, unless the request already went to the server', () => {
    const { sink, router, failures } = parts();
    failures.stageFailed({ jsonrpc: '2.0', id: 1, method: 'tools/call' }, new Error('x'), 'toServer');
    assert.equal(sink.sent.length, 1);
    router.toServer({ jsonrpc: '2.0', id: 2, method: 'tools/call' });
    failures.stageFailed({ jsonrpc: '2.0', id: 2, method: 'tools/call' }, new Error('x'), 'toServer');
    assert.equal(sink.sent.length, 1, 'the server will answer it');
  });
});
