import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exportSession } from '../../src/recording/export.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';

/**
 * The export can be verified on its own with nothing but docs/recording.md: this test re-implements the
 * documented chain and seal from scratch (no code of the recorder's) and checks an exported session with it.
 */

const field = (s: string) => `${Buffer.byteLength(s)}:${s}`;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

interface Line {
  type: string;
  session: Record<string, unknown> | string;
  seq: number;
  timeUs: number;
  monoUs: number;
  kind: string;
  direction: string | null;
  boundary: string | null;
  payload: string;
  forwarded?: string;
  hash: string;
}

describe('an export verifies by the documented algorithm alone', () => {
  let gw: TestGateway;
  let lines: Line[];
  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() }, denied: { stdio: everythingStdio(), tools: { deny: ['echo'] } } } });
    const id = await rawInitialize(gw.mcp('denied'), gw.auth);
    const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    for (const [n, body] of [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'refused: ünïcode 🐉 "quoted"' } } },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-sum', arguments: { a: 1, b: 2 } } },
    ].entries()) {
      await (await fetch(gw.mcp('denied'), { method: 'POST', headers, body: JSON.stringify(body) })).text();
      void n;
    }
    await fetch(gw.mcp('denied'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': id } });
    const store = gw.gateway.recorder!.store;
    const session = (await store.getSession(id))!;
    lines = [];
    for await (const l of exportSession(store, session)) lines.push(JSON.parse(l) as Line);
  });
  after(() => gw?.stop());

  it('every event hash follows from the one before it, from the genesis of the session id', () => {
    const header = lines[0]!.session as { id: string };
    const events = lines.slice(1);
    assert.ok(events.some((e) => e.boundary === 'relayed') && events.some((e) => e.boundary === 'received') && events.some((e) => e.kind === 'verdict'));
    let previous = sha256(`portcullis-session\0${header.id}`);
    for (const e of events) {
      let canonical =
        field('portcullis-event-v1') +
        field(header.id) +
        field(String(e.seq)) +
        field(String(e.timeUs)) +
        field(String(e.monoUs)) +
        field(e.kind) +
        field(e.direction ?? '') +
        field(e.boundary ?? '') +
        field(e.payload);
      if (e.boundary === 'relayed') canonical += field(e.forwarded!);
      const expected = sha256(previous + canonical);
      assert.equal(e.hash, expected, `event ${e.seq}`);
      previous = expected;
    }
  });

  it('the seal is an Ed25519 signature over the documented statement, by the key the gateway publishes', () => {
    const s = lines[0]!.session as {
      id: string;
      eventCount: number;
      lastHash: string;
      status: string;
      closedAtUs: number;
      seal: { signature: string; keyId: string };
    };
    const events = lines.slice(1);
    assert.equal(s.eventCount, events.length);
    assert.equal(s.lastHash, events.at(-1)!.hash);
    const statement = [
      field('portcullis-seal-v1'),
      field(s.id),
      field(String(s.eventCount)),
      field(s.lastHash),
      field(s.status),
      field(String(s.closedAtUs)),
    ].join('');
    const key = gw.gateway.recorder!.key;
    const publicKey = createPublicKey(key.publicKeyPem);
    const keyId = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 16);
    assert.equal(s.seal.keyId, keyId);
    assert.ok(verify(null, Buffer.from(statement), publicKey, Buffer.from(s.seal.signature, 'base64')));
  });
});
