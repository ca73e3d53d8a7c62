import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExchangeTracker, eventsOfTrace, isTraceId, traceIdOf } from '../../src/recording/exchanges.js';
import { describeEvent, summarizeRpc } from '../../src/recording/transcript.js';
import type { EventRow } from '../../src/store/types.js';

/** Exchanges read out of recorded events: trace ids, which requests were answered, and payloads of any shape. */

let seq = 0;
function event(kind: EventRow['kind'], direction: EventRow['direction'], boundary: EventRow['boundary'], payload: unknown, forwarded?: unknown): EventRow {
  return {
    sessionId: 's',
    seq: seq++,
    timeUs: 0,
    monoUs: seq * 1000,
    kind,
    direction,
    boundary,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    forwarded: forwarded === undefined ? null : JSON.stringify(forwarded),
    hash: '',
  };
}
const request = (id: number, method: string, meta?: Record<string, unknown>) => ({ jsonrpc: '2.0', id, method, params: meta ? { _meta: meta } : {} });
const result = (id: number | string) => ({ jsonrpc: '2.0', id, result: {} });

describe('exchanges', () => {
  it('traceIdOf takes a well-formed W3C traceparent only', () => {
    assert.equal(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(traceIdOf('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'), '4bf92f3577b34da6a3ce929d0e0e4736');
    for (const bad of [
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // the all-zero id is invalid by the spec
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', // 31 digits
      '00-4bf92f3577b34da6a3ce929d0e0e4736',
      'x',
      42,
      null,
    ]) {
      assert.equal(traceIdOf(bad), undefined, String(bad));
    }
    assert.equal(isTraceId('4bf92f3577b34da6a3ce929d0e0e4736'), true);
    assert.equal(isTraceId('0'.repeat(32)), false);
    assert.equal(isTraceId('4bf92f3577b34da6a3ce929d0e0e4736 '), false);
  });

  it('the tracker pairs requests with their answers by the client id, and names the ones left unanswered', () => {
    const t = new ExchangeTracker();
    const events = [
      event('message', 'toServer', 'relayed', request(1, 'tools/list'), request(101, 'tools/list')),
      event('message', 'toClient', 'relayed', result(101), result(1)),
      event('message', 'toServer', 'received', request(2, 'tools/call')),
      event('verdict', 'toServer', null, { stage: 'tool-filter', action: 'answer', direction: 'toServer', messageId: 2 }),
      event('message', 'toClient', 'delivered', { jsonrpc: '2.0', id: 2, error: { code: -31003, message: 'denied' } }),
      event('message', 'toServer', 'relayed', request(3, 'tools/call'), request(103, 'tools/call')),
      event('message', 'toServer', 'relayed', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3 } }),
      event(
        'message',
        'toServer',
        'relayed',
        request(4, 'tools/call', { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' }),
        request(104, 'tools/call'),
      ),
      // An answer under the server's id only (not the client's): it does not answer the client's request 4.
      event('message', 'toClient', 'received', result(4)),
    ];
    for (const e of events) t.add(e);
    assert.deepEqual(
      t.records().map((r) => [r.id, r.method, r.outcome, r.verdicts, r.protocolVersion ?? null]),
      [
        [1, 'tools/list', 'result', 0, null],
        [2, 'tools/call', 'refused', 1, null],
        [3, 'tools/call', 'cancelled', 0, null],
        [4, 'tools/call', 'unanswered', 0, '2026-07-28'],
      ],
    );
  });

  it('eventsOfTrace follows a traced request through the renumbering, and leaves the rest out', () => {
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const meta = { traceparent: `00-${trace}-b7ad6b7169203331-01`, progressToken: 't1' };
    const events = [
      event('message', 'toServer', 'received', request(1, 'tools/call', meta)),
      event('message', 'toServer', 'delivered', request(201, 'tools/call', meta)),
      event('message', 'toServer', 'relayed', request(2, 'tools/call'), request(202, 'tools/call')),
      event(
        'message',
        'toClient',
        'relayed',
        { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 't1', progress: 1 } },
        {
          jsonrpc: '2.0',
          method: 'notifications/progress',
          params: { progressToken: 't1', progress: 1 },
        },
      ),
      event('message', 'toClient', 'relayed', result(202), result(2)),
      event('message', 'toClient', 'received', result(201)),
      event('verdict', 'toClient', null, { stage: 'mask', action: 'rewrite', direction: 'toClient', messageId: 1 }),
      event('message', 'toClient', 'delivered', result(1)),
    ];
    const picked = eventsOfTrace(events, trace.toUpperCase()).map((e) => e.seq - events[0]!.seq);
    assert.deepEqual(picked, [0, 1, 3, 5, 6, 7]);
  });

  it("a client's clientInfo is text whatever it sent", () => {
    const line = describeEvent(
      event('negotiated', null, null, { protocolVersion: '2025-11-25', clientInfo: { name: { evil: 1 }, version: 2 }, serverInfo: null }),
    );
    assert.match(line, /client \{"evil":1\} 2; server \?$/);
  });

  it('payloads of any shape are described without throwing', () => {
    for (const payload of [
      'null',
      '[]',
      '"text"',
      '{"params":null,"id":1,"method":"x"}',
      '{"id":1,"error":null}',
      '{"id":1,"result":{"content":{"a":1}}}',
      '{"id":1,"result":{"content":[null,{"type":"text"}]}}',
      'not json',
    ]) {
      const e = event('message', 'toClient', 'delivered', payload);
      assert.doesNotThrow(() => summarizeRpc(payload), payload);
      assert.doesNotThrow(() => describeEvent(e), payload);
    }
    for (const payload of ['null', '{"details":{"redactions":"x","approvers":"y","changes":[null]}}', '{"identity":"x"}']) {
      for (const kind of ['open', 'verdict', 'negotiated', 'close'] as const) {
        assert.doesNotThrow(() => describeEvent(event(kind, null, null, payload)), `${kind} ${payload}`);
      }
    }
  });
});
