import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { openStore } from '../../src/store/open.js';
import { connectClient, edgeTransport } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, type NegotiationMode } from '../helpers/modern.js';
import { allEvents, deliveredTexts } from '../helpers/recorded.js';
import { waitFor, waitFor as until } from '../helpers/wait.js';

/**
 * 2026 client → 2025 server: the official v2 client, pinned to 2026-07-28, in auto mode and in its default mode, and
 * the v1 client, each through the gateway to server-everything over stdio. Modern clients are served through pooled
 * internal sessions; what they ask for works as it does for a 2025-era client.
 */

const modes: Array<{ name: string; mode: NegotiationMode; era: 'modern' | 'legacy' }> = [
  { name: 'pinned to 2026-07-28', mode: { pin: '2026-07-28' }, era: 'modern' },
  { name: 'auto', mode: 'auto', era: 'modern' },
  { name: 'default', mode: 'default', era: 'legacy' },
];

describe('modern clients through the gateway to a 2025 server (server-everything, stdio)', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({ connections: { ev: { stdio: everythingStdio() } } });
  });
  after(async () => gw?.stop());

  for (const { name, mode, era } of modes) {
    describe(`the v2 client, ${name}`, () => {
      let client: Client;
      const elicited: unknown[] = [];

      before(async () => {
        client = await connectV2(gw.mcp('ev'), gw.auth, mode, elicited);
      });
      after(async () => client?.close());

      it(`lands on the ${era} era`, () => {
        assert.equal(client.getProtocolEra(), era);
      });

      it('lists and calls tools', async () => {
        const { tools } = await client.listTools();
        assert.ok(tools.some((t) => t.name === 'echo'));
        const result = await client.callTool({ name: 'echo', arguments: { message: `hello from ${name}` } });
        assert.deepEqual(result.content, [{ type: 'text', text: `Echo: hello from ${name}` }]);
      });

      it('lists and reads resources', async () => {
        const { resources } = await client.listResources();
        assert.ok(resources.length > 0);
        const read = await client.readResource({ uri: resources[0]!.uri });
        assert.equal(read.contents[0]!.uri, resources[0]!.uri);
      });

      it('lists and gets prompts', async () => {
        const { prompts } = await client.listPrompts();
        assert.ok(prompts.some((p) => p.name === 'simple-prompt'));
        const prompt = await client.getPrompt({ name: 'simple-prompt' });
        assert.ok(prompt.messages.length > 0);
      });

      it('receives progress before the result', async () => {
        const progress: number[] = [];
        const result = await client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
          { onprogress: (p) => progress.push(p.progress) },
        );
        assert.deepEqual(progress, [1, 2, 3]);
        assert.match(JSON.stringify(result.content), /Long running operation completed/);
      });

      it('answers an elicitation the server makes during a call (an MRTR round for a modern client)', async () => {
        const before = elicited.length;
        const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
        assert.equal(elicited.length, before + 1, 'the client was asked once');
        assert.match(JSON.stringify(result.content), /Ada Lovelace/);
      });

      it('cancels a call upstream when the client aborts it', async () => {
        const abort = new AbortController();
        let sawProgress = false;
        const call = client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } },
          {
            signal: abort.signal,
            onprogress: () => {
              sawProgress = true;
              abort.abort();
            },
          },
        );
        await assert.rejects(call);
        assert.ok(sawProgress);
        // The server was told: nothing stays pending upstream.
        await until(() => [...gw.gateway.sessions.all()].every((s) => s.pendingRequests === 0), 'the cancelled call leaves no pending request');
      });
    });
  }

  it('delivers log messages to a modern request that asks for them (_meta logLevel), and none to one that does not', async () => {
    const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
    const logs: unknown[] = [];
    client.setNotificationHandler('notifications/message', (n) => void logs.push(n.params));
    try {
      // server-everything sends one log message at once when simulated logging starts, then one every 5 s.
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      assert.equal(logs.length, 0, 'no logLevel: no log messages');
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {} }); // stops it
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {}, _meta: { 'io.modelcontextprotocol/logLevel': 'debug' } });
      assert.equal(logs.length, 1, 'logLevel debug: the log message sent during the call reaches the client');
      await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    } finally {
      await client.close();
    }
  });

  it('subscriptions/listen delivers resources/updated for a followed resource, built from the legacy server', async () => {
    const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
    const updated: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updated.push(n.params.uri));
    try {
      const { resources } = await client.listResources();
      const uri = resources[0]!.uri;
      const subscription = await client.listen({ resourceSubscriptions: [uri], toolsListChanged: true });
      assert.deepEqual(subscription.honoredFilter.resourceSubscriptions, [uri]);
      // server-everything sends an update for each subscribed resource at once when simulated updates start.
      await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
      await until(() => updated.includes(uri), 'the update arrives on the listen stream');
      await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
      await subscription.close();
      assert.equal(await subscription.closed, 'local');
    } finally {
      await client.close();
    }
  });

  it('the v1 client still works (legacy edge, its own session)', async () => {
    const { client } = await connectClient(edgeTransport('streamable-http', gw, 'ev'));
    try {
      const result = await client.callTool({ name: 'echo', arguments: { message: 'v1' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: v1' }]);
    } finally {
      await client.close();
    }
  });

  it('serves the requests of one modern caller through one pooled session, recorded with the protocol version', async () => {
    const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' }, []);
    try {
      for (let i = 0; i < 3; i++) await client.callTool({ name: 'echo', arguments: { message: `pooled ${i}` } });
    } finally {
      await client.close();
    }
    const modern = [...gw.gateway.sessions.all()].filter((s) => s.clientInfo !== undefined && JSON.stringify(s.clientInfo).includes('v2-test-client'));
    assert.ok(modern.length >= 1 && modern.length <= 4, `pooled sessions: ${modern.length}`);
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const rows = (await store.listSessions({ connection: 'ev', limit: 500 })).filter((r) => r.edge === 'modern' && r.status === 'open');
      const texts = (await Promise.all(rows.map(async (r) => deliveredTexts(await allEvents(store, r.id), 'toServer')))).flat();
      const pooled = texts.filter((t) => t.includes('pooled 1'));
      assert.equal(pooled.length, 1, 'the call went upstream once, recorded in a pooled session');
      assert.match(pooled[0]!, /"io\.modelcontextprotocol\/protocolVersion":"2026-07-28"/);
    } finally {
      await store.close();
    }
  });
});

describe('the pool of modern sessions', () => {
  it('serves concurrent requests of one caller on up to modernPoolSize sessions, elicitations included', async () => {
    const gw = await startTestGateway({ sessions: { modernPoolSize: 3 }, connections: { ev: { stdio: everythingStdio() } } });
    try {
      const elicited: unknown[] = [];
      const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' }, elicited);
      const echoes = await Promise.all(Array.from({ length: 8 }, (_, i) => client.callTool({ name: 'echo', arguments: { message: `c${i}` } })));
      assert.deepEqual(
        echoes.map((r) => (r.content as Array<{ text: string }>)[0]!.text),
        Array.from({ length: 8 }, (_, i) => `Echo: c${i}`),
      );
      assert.ok(gw.gateway.modernPool.size >= 1 && gw.gateway.modernPool.size <= 3, `pool size ${gw.gateway.modernPool.size}`);
      const asked = await Promise.all(Array.from({ length: 2 }, () => client.callTool({ name: 'trigger-elicitation-request', arguments: {} })));
      for (const r of asked) assert.match(JSON.stringify(r.content), /Ada Lovelace/);
      assert.equal(elicited.length, 2);
      await client.close();
    } finally {
      await gw.stop();
    }
  });

  it('closes a pooled session after it sat idle, and opens a new one for the next request', async () => {
    const gw = await startTestGateway({ sessions: { modernIdleTimeout: '1s' }, connections: { ev: { stdio: everythingStdio() } } });
    try {
      const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
      await client.callTool({ name: 'echo', arguments: { message: 'one' } });
      assert.equal(gw.gateway.modernPool.size, 1);
      await until(() => gw.gateway.modernPool.size === 0, 'the idle pooled session closes');
      await until(() => gw.gateway.sessions.size === 0, 'and its session ends');
      const again = await client.callTool({ name: 'echo', arguments: { message: 'two' } });
      assert.deepEqual(again.content, [{ type: 'text', text: 'Echo: two' }]);
      assert.equal(gw.gateway.modernPool.size, 1);
      await client.close();
    } finally {
      await gw.stop();
    }
  });

  it('replaces a pooled session whose upstream died', async () => {
    const gw = await startTestGateway({
      connections: { crash: { stdio: { command: process.execPath, args: [join(import.meta.dirname, '../fixtures/crashing-server.js'), 'stdio'] } } },
    });
    try {
      const client = await connectV2(gw.mcp('crash'), gw.auth, { pin: '2026-07-28' });
      const first = await client.callTool({ name: 'echo', arguments: { text: 'before' } });
      assert.match(JSON.stringify(first), /before/);
      // `half` writes half an answer and exits: the pooled session ends with its upstream.
      await assert.rejects(client.callTool({ name: 'half', arguments: {} }));
      await until(() => gw.gateway.modernPool.size === 0, 'the dead pooled session leaves the pool');
      const after = await client.callTool({ name: 'echo', arguments: { text: 'after' } });
      assert.match(JSON.stringify(after), /after/);
      await client.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('a server request outside any modern request', () => {
  it('is refused with an error to the server, and recorded', async () => {
    const refused: string[] = [];
    const gw = await startTestGateway(
      { connections: { asking: { stdio: { command: process.execPath, args: [join(import.meta.dirname, '../fixtures/asking-server.js')] } } } },
      {
        observers: [
          {
            message: (_s, direction, boundary, m) => {
              if (direction === 'toServer' && boundary === 'delivered' && 'error' in m && m.id === 'unprompted-roots') refused.push(JSON.stringify(m));
            },
          },
        ],
      },
    );
    try {
      const client = await connectV2(gw.mcp('asking'), gw.auth, { pin: '2026-07-28' });
      const asked = await client.callTool({ name: 'ask-later', arguments: {} });
      assert.deepEqual(asked.content, [{ type: 'text', text: 'will ask' }]);
      await waitFor(() => refused.length === 1, 'the unprompted server request is answered by the gateway');
      assert.match(refused[0]!, /outside a single pending client request/);
      const seen = await client.callTool({ name: 'answer', arguments: {} });
      assert.match(JSON.stringify(seen.content), /outside a single pending client request/, 'the server got the refusal');
      await client.close();
      const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
      try {
        const rows = (await store.listSessions({ connection: 'asking', limit: 50 })).filter((r) => r.edge === 'modern');
        const texts = (await Promise.all(rows.map(async (r) => deliveredTexts(await allEvents(store, r.id), 'toServer')))).flat();
        assert.ok(
          texts.some((t) => t.includes('unprompted-roots') && t.includes('outside a single pending client request')),
          'the refusal is recorded',
        );
      } finally {
        await store.close();
      }
    } finally {
      await gw.stop();
    }
  });
});
