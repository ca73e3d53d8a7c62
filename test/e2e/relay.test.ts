import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { LoggingMessageNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isNotification, type JsonRpcNotification } from '../../src/protocol/jsonrpc.js';
import { type ClientInbox, closeClient, connectClient, type Edge, edgeTransport } from '../helpers/client.js';
import { everythingStdio, type RunningServer, startEverything } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The gateway as a faithful relay: the official SDK client, through each downstream edge, to
 * server-everything over each upstream transport, exercising every protocol feature the server has.
 */

type UpstreamKind = 'stdio' | 'http' | 'sse';

function text(result: unknown): string {
  return ((result as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

const upstreams: UpstreamKind[] = ['stdio', 'http', 'sse'];
const edges: Edge[] = ['streamable-http', 'sse', 'stdio-bridge'];

for (const upstream of upstreams) {
  for (const edge of edges) {
    describe(`relay: ${edge} edge → ${upstream} upstream`, () => {
      let server: RunningServer | undefined;
      let gw: TestGateway;
      let client: Client;
      let transport: Transport;
      let inbox: ClientInbox;
      const deliveredToClient: JsonRpcNotification[] = [];

      before(async () => {
        let connection: Record<string, unknown>;
        if (upstream === 'stdio') connection = { stdio: everythingStdio() };
        else {
          server = await startEverything(upstream === 'http' ? 'streamableHttp' : 'sse');
          connection = { [upstream]: { url: server.url } };
        }
        gw = await startTestGateway(
          { connections: { everything: connection } },
          {
            observers: [
              {
                message: (_s, direction, boundary, m) => {
                  if (direction === 'toClient' && boundary === 'delivered' && isNotification(m)) deliveredToClient.push(m);
                },
              },
            ],
          },
        );
        transport = edgeTransport(edge, gw, 'everything');
        ({ client, inbox } = await connectClient(transport));
      });

      after(async () => {
        await closeClient(client, transport).catch(() => {});
        await gw?.stop();
        await server?.stop();
      });

      it('initializes and reports the real server', () => {
        assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
        assert.ok(client.getServerCapabilities()?.tools, 'tools capability relayed');
      });

      it('lists and calls tools', async () => {
        const { tools } = await client.listTools();
        const names = tools.map((t) => t.name);
        for (const expected of ['echo', 'get-sum', 'trigger-sampling-request', 'trigger-elicitation-request']) {
          assert.ok(names.includes(expected), `${expected} in ${names.join(',')}`);
        }
        assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'through the gate' } })), 'Echo: through the gate');
        assert.match(text(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } })), /42/);
      });

      it('relays structured content and tool errors', async () => {
        const structured = await client.callTool({ name: 'get-structured-content', arguments: { location: 'New York' } });
        assert.ok(structured.structuredContent, 'structuredContent relayed');
        // Current SDK servers report an unknown tool as an error result, older ones as a JSON-RPC error.
        const unknown = await client
          .callTool({ name: 'no-such-tool', arguments: {} })
          .catch((err: Error) => ({ isError: true, content: [{ type: 'text', text: err.message }] }));
        assert.equal(unknown.isError, true);
        assert.match(text(unknown), /no-such-tool/);
      });

      it('lists and reads resources and templates, and subscribes', async () => {
        const { resources } = await client.listResources();
        assert.ok(resources.length > 0);
        const read = await client.readResource({ uri: resources[0]!.uri });
        assert.ok(read.contents.length > 0);
        const { resourceTemplates } = await client.listResourceTemplates();
        assert.ok(resourceTemplates.length > 0);
        assert.deepEqual(await client.subscribeResource({ uri: resources[0]!.uri }), {});
        assert.deepEqual(await client.unsubscribeResource({ uri: resources[0]!.uri }), {});
      });

      it('lists and gets prompts, and completes arguments', async () => {
        const { prompts } = await client.listPrompts();
        assert.ok(prompts.some((p) => p.name === 'simple-prompt'));
        const prompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lisbon' } });
        assert.match(JSON.stringify(prompt.messages), /Lisbon/);
        const completion = await client.complete({
          ref: { type: 'ref/prompt', name: 'completable-prompt' },
          argument: { name: 'department', value: 'E' },
        });
        assert.ok(Array.isArray(completion.completion.values));
      });

      it('routes a sampling request from the server to this client and its answer back', async () => {
        const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello model', maxTokens: 20 } });
        assert.equal(inbox.sampling.length, 1);
        assert.match(JSON.stringify(inbox.sampling[0]!.messages), /hello model/);
        assert.match(text(result), /sampled reply from the test client/);
      });

      it('routes an elicitation request and its answer', async () => {
        const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
        assert.equal(inbox.elicitation.length, 1);
        assert.match(text(result), /Ada Lovelace/);
      });

      it('answers a roots request from the server', async () => {
        const result = await client.callTool({ name: 'get-roots-list', arguments: {} });
        assert.ok(inbox.rootsRequests >= 1, 'the server asked this client for roots');
        assert.match(text(result), /portcullis-root/);
      });

      it('relays progress notifications for a long-running call', async () => {
        const progress: number[] = [];
        const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } }, undefined, {
          onprogress: (p) => progress.push(p.progress),
        });
        assert.match(text(result), /completed/i);
        // The gateway delivered every progress notification before the response, in order.
        const delivered = deliveredToClient
          .filter((m) => m.method === 'notifications/progress')
          .map((m) => (m.params as { progress: number }).progress)
          .slice(-3);
        assert.deepEqual(delivered, [1, 2, 3]);
        // The SDK client dispatches notifications a microtask after responses, so when the last progress
        // and the response arrive in one read it drops that progress: a client quirk, seen directly too.
        assert.deepEqual(progress, [1, 2, 3].slice(0, progress.length));
        assert.ok(progress.length >= 2, `progress seen: ${JSON.stringify(progress)}`);
      });

      it('relays cancellation: the aborted call rejects and the session keeps working', async () => {
        const controller = new AbortController();
        const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 5, steps: 5 } }, undefined, {
          signal: controller.signal,
          onprogress: () => controller.abort('changed my mind'),
        });
        await assert.rejects(call, /abort|changed my mind|cancel/i);
        assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'still here' } })), 'Echo: still here');
      });

      it('relays logging level and log messages', async () => {
        await client.setLoggingLevel('debug');
        const received = new Promise<unknown>((resolve) => client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => resolve(n.params)));
        await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
        const params = await Promise.race([received, new Promise((_, reject) => setTimeout(() => reject(new Error('no log message')), 8000))]);
        assert.ok((params as { level?: string }).level);
        await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      });

      it('answers ping', async () => {
        assert.deepEqual(await client.ping(), {});
      });
    });
  }
}
