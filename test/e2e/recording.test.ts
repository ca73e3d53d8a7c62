import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { keyIdOfPem } from '../../src/recording/keys.js';
import { trustedKeys, verifyLedger, verifySession } from '../../src/recording/verify.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { deliveredTexts, receivedTexts } from '../helpers/recorded.js';
import { allEvents } from '../helpers/recorded.js';
import { wireTap } from '../helpers/wire-tap.js';

/**
 * A real session through the gateway is recorded completely: every message the client sent and received,
 * byte for byte as it crossed the wire, in order, with the session's lifecycle; and the recording verifies.
 */

for (const backend of backends) {
  describe(`recording a real session (${backend.name} store)`, () => {
    let ts: TestStore;
    let gw: TestGateway;
    let store: Store;
    let sessionId: string;
    const tap = wireTap();

    before(async () => {
      ts = backend.make();
      gw = await startTestGateway({ store: ts.url, connections: { everything: { stdio: everythingStdio() } } });
      const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { fetch: tap.fetch, requestInit: { headers: gw.auth } });
      const client = new Client({ name: 'recorded-client', version: '2.0.0' }, { capabilities: { sampling: {} } });
      client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', model: 'm', content: { type: 'text', text: 'sampled' } }));
      await client.connect(transport);
      sessionId = transport.sessionId!;
      await client.listTools();
      await client.callTool({ name: 'echo', arguments: { message: 'recorded: "quotes", \\ backslash, ünïcode 🐉' } });
      await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: () => {} });
      await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
      const { resources } = await client.listResources();
      await client.readResource({ uri: resources[0]!.uri });
      await client.ping();
      // A large message is stored whole, not truncated.
      await client.callTool({ name: 'echo', arguments: { message: 'L'.repeat(1024 * 1024) } });
      await transport.terminateSession();
      await client.close();
      await tap.settled();
      store = await openStore(ts.url, { reader: true });
    });

    after(async () => {
      await store?.close();
      await gw?.stop();
      await ts?.destroy();
    });

    it('records the session as opened and closed, with identity, connection, client and protocol', async () => {
      const row = (await store.getSession(sessionId))!;
      assert.equal(row.connection, 'everything');
      assert.equal(row.subject, 'tester');
      assert.deepEqual(row.groups, ['testers']);
      assert.equal(row.edge, 'streamable-http');
      assert.equal(row.status, 'closed');
      assert.equal(row.closeReason, 'client ended the session');
      assert.deepEqual(row.clientInfo, { name: 'recorded-client', version: '2.0.0' });
      assert.equal((row.serverInfo as { name: string }).name, 'mcp-servers/everything');
      assert.equal(row.protocolVersion, '2025-11-25');
      assert.equal(row.instanceId, gw.gateway.recorder!.instanceId);
      const events = await allEvents(store, sessionId);
      assert.equal(events[0]!.kind, 'open');
      const opened = JSON.parse(events[0]!.payload) as { identity: { subject: string; issuer: string; groups: string[] }; access: string };
      assert.equal(opened.identity.subject, 'tester');
      assert.match(opened.identity.issuer, /^urn:portcullis:dev-identity:/);
      assert.deepEqual(opened.identity.groups, ['testers']);
      assert.equal(opened.access, 'open to every signed-in user', 'the access decision that let the session open');
      assert.equal(events.at(-1)!.kind, 'close');
      assert.ok(events.some((e) => e.kind === 'negotiated'));
      assert.equal(row.eventCount, events.length);
    });

    it('holds every message the client sent, byte for byte, in order', async () => {
      const events = await allEvents(store, sessionId);
      assert.ok(tap.sent.length >= 8, `the client sent ${tap.sent.length} messages`);
      assert.deepEqual(receivedTexts(events, 'toServer'), tap.sent);
    });

    it('holds every message the client received, byte for byte', async () => {
      const events = await allEvents(store, sessionId);
      const delivered = deliveredTexts(events, 'toClient');
      assert.ok(tap.received.length >= 10, `the client received ${tap.received.length} messages`);
      assert.deepEqual([...delivered].sort(), [...tap.received].sort());
      // Each stream's order holds: progress comes before the response of its call.
      const progressAt = delivered.findIndex((p) => p.includes('notifications/progress'));
      const longCall = JSON.parse(tap.sent.find((s) => s.includes('trigger-long-running-operation'))!) as { id: number };
      const responseAt = delivered.findIndex((p) => (JSON.parse(p) as { id?: number }).id === longCall.id && p.includes('"result"'));
      assert.ok(progressAt >= 0 && progressAt < responseAt, 'progress recorded before the response');
    });

    it('records both boundaries: what the gateway received and what it delivered, with renumbered ids', async () => {
      const relayed = (await allEvents(store, sessionId)).filter((e) => e.boundary === 'relayed');
      assert.ok(relayed.length > 0 && relayed.every((e) => e.forwarded !== null), 'messages no stage acted on are one relayed event with both texts');
      const events = await allEvents(store, sessionId);
      const echo = deliveredTexts(events, 'toServer').find((p) => p.includes('"echo"'))!;
      const asSent = JSON.parse(tap.sent.find((s) => s.includes('"echo"'))!) as { id: number; params: unknown };
      const forwarded = JSON.parse(echo) as { id: number; params: unknown };
      assert.deepEqual(forwarded.params, asSent.params);
      assert.equal(typeof forwarded.id, 'number');
      // The server's answer as received (its id) and as delivered (the client's id).
      const fromServer = receivedTexts(events, 'toClient').map((p) => JSON.parse(p) as { id?: number });
      assert.ok(fromServer.some((m) => m.id === forwarded.id));
    });

    it('stores a 1 MiB message whole, both ways', async () => {
      const events = await allEvents(store, sessionId);
      const big = deliveredTexts(events, 'toClient').filter((p) => p.length > 1024 * 1024);
      assert.equal(big.length, 1);
      assert.ok(tap.received.includes(big[0]!), 'the recorded response is byte for byte what the client got');
      assert.ok(receivedTexts(events, 'toServer').some((p) => p.length > 1024 * 1024));
    });

    it('numbers events gaplessly with µs times and monotonic offsets', async () => {
      const events = await allEvents(store, sessionId);
      events.forEach((e, i) => assert.equal(e.seq, i));
      for (let i = 1; i < events.length; i++) {
        assert.ok(events[i]!.monoUs >= events[i - 1]!.monoUs, `monotonic at ${i}`);
        assert.ok(Math.abs(events[i]!.timeUs - Date.now() * 1000) < 600_000_000, 'a µs wall clock time');
      }
    });

    it('verifies: chain, seal and ledger', async () => {
      const key = gw.gateway.recorder!.key;
      const result = await verifySession(store, sessionId, await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]));
      assert.deepEqual(result.problems, []);
      assert.equal(result.status, 'verified');
      assert.equal(keyIdOfPem(key.publicKeyPem), key.keyId);
      const ledger = await verifyLedger(store, gw.gateway.recorder!.instanceId);
      assert.deepEqual(ledger.problems, []);
      assert.ok(ledger.entries >= 2);
    });

    it('records a batch element by element, each as its exact text', async () => {
      const id = await rawInitialize(gw.mcp('everything'), gw.auth);
      const body = '[ {"jsonrpc":"2.0", "id":"b1","method":"ping"} ,{"jsonrpc":"2.0","id":"b2","method":"tools/list"}]';
      const res = await fetch(gw.mcp('everything'), {
        method: 'POST',
        headers: { ...mcpHeaders, ...gw.auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' },
        body,
      });
      await res.text();
      await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': id } });
      await gw.gateway.recorder!.drain();
      const received = receivedTexts(await allEvents(store, id), 'toServer');
      assert.deepEqual(received.slice(-2), ['{"jsonrpc":"2.0", "id":"b1","method":"ping"}', '{"jsonrpc":"2.0","id":"b2","method":"tools/list"}']);
    });
  });
}
