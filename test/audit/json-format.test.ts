import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonLine } from '../../src/audit/formats/json.js';
import { auditKindOf, rfc3339Us, toAuditRecord } from '../../src/audit/record.js';
import type { EventRow } from '../../src/store/types.js';

/** Recorded events as records, and records as JSON lines. */

const session = { sessionId: 's-1', instanceId: 'gw-a', connection: 'everything', subject: 'alice', email: null, edge: 'modern' };
const all = new Set(['lifecycle', 'verdict', 'review', 'access', 'message', 'redaction'] as const);

function event(kind: EventRow['kind'], payload: string): EventRow {
  return {
    sessionId: 's-1',
    seq: 3,
    timeUs: 1_796_468_686_123_456,
    monoUs: 0,
    kind,
    direction: 'toServer',
    boundary: 'received',
    payload,
    forwarded: null,
    hash: 'ab'.repeat(32),
  };
}

test('a message is embedded as recorded, one line; a pretty-printed one is written again on one line', () => {
  const text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"a \\"quoted\\" ü"}}}';
  const line = jsonLine(toAuditRecord(session, event('message', text), all)!);
  assert.ok(line.includes(`"payload":${text},`), 'the recorded text, not parsed and written again');
  const parsed = JSON.parse(line);
  assert.deepEqual(parsed, {
    instance: 'gw-a',
    session: 's-1',
    seq: 3,
    time: '2026-12-05T11:04:46.123456Z',
    kind: 'message',
    event: 'message',
    direction: 'toServer',
    connection: 'everything',
    subject: 'alice',
    edge: 'modern',
    payload: JSON.parse(text),
    hash: 'ab'.repeat(32),
  });
  const record = toAuditRecord(session, event('message', text), all)!;
  assert.deepEqual(record.payload, JSON.parse(text), 'read as a value, the payload is parsed');
  assert.equal(JSON.stringify(record), line, 'the same line either way');

  const pretty = '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "ping"\n}';
  const prettyLine = jsonLine(toAuditRecord(session, event('message', pretty), all)!);
  assert.ok(!prettyLine.includes('\n'));
  assert.deepEqual(JSON.parse(prettyLine).payload, { jsonrpc: '2.0', id: 1, method: 'ping' });
});

test('audit kinds of recorded events, and the filter', () => {
  assert.equal(auditKindOf({ kind: 'open' }, {}), 'lifecycle');
  assert.equal(auditKindOf({ kind: 'close' }, {}), 'lifecycle');
  assert.equal(auditKindOf({ kind: 'verdict' }, { stage: 'guard', action: 'hold', reason: 'held for review rv-1' }), 'review');
  assert.equal(auditKindOf({ kind: 'verdict' }, { stage: 'guard', action: 'pass', details: { review: 'rv-1', status: 'approved' } }), 'review');
  assert.equal(auditKindOf({ kind: 'verdict' }, { stage: 'mask', action: 'rewrite', sensitive: true }), 'redaction');
  assert.equal(auditKindOf({ kind: 'verdict' }, { stage: 'authorize', action: 'answer' }), 'access');
  assert.equal(auditKindOf({ kind: 'verdict' }, { stage: 'guard', action: 'answer', reason: 'denied by rule x' }), 'verdict');
  assert.equal(toAuditRecord(session, event('message', '{}'), new Set(['lifecycle'])), undefined);
  assert.equal(toAuditRecord(session, event('verdict', '{"stage":"authorize","action":"answer"}'), new Set(['access']))?.kind, 'access');
  assert.equal(rfc3339Us(1_000_000), '1970-01-01T00:00:01.000000Z');
  // The second's text is reused while the seconds stay the same: each call still says its own time.
  assert.equal(rfc3339Us(1_796_468_686_000_007), '2026-12-05T11:04:46.000007Z');
  assert.equal(rfc3339Us(1_796_468_686_999_999), '2026-12-05T11:04:46.999999Z');
  assert.equal(rfc3339Us(1_796_468_687_000_000), '2026-12-05T11:04:47.000000Z');
  assert.equal(rfc3339Us(1_796_468_686_123_456), '2026-12-05T11:04:46.123456Z');
});
