import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, LoggingMessageNotificationSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { type RunningV2Server, startV2HttpServer, v2StdioCommand } from '../fixtures/v2-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * 2025-era clients (the SDK v1 client, the v2 client in its default mode) through the gateway to a 2026-07-28 server
 * (the SDK v2 fixture) over Streamable HTTP and over stdio, in its default mode and modern-only: the gateway answers
 * initialize from server/discover and sends every request per request, with the envelope; MRTR elicitation is played
 * to the client as real elicitation requests (the legacy shim).
 */

/** What a test needs of either SDK's client, the same calls on both. */
interface Probe {
  name: string;
  callTool(name: string, args: Record<string, unknown>, options?: { onprogress?: () => void; signal?: AbortSignal }): Promise<{ content?: unknown }>;
  listTools(): Promise<Array<{ name: string; inputSchema: unknown }>>;
  readResource(uri: string): Promise<unknown>;
  getPrompt(name: string, args: Record<string, string>): Promise<unknown>;
  serverVersion(): unknown;
  logs: string[];
  elicited: string[];
  /** How many notifications/tools/list_changed arrived. */
  changes: () => number;
  close(): Promise<void>;
}

function answer(message: string): Record<string, unknown> {
  return { action: 'accept', content: message.startsWith('Your name') ? { name: 'Ada' } : { confirm: true } };
}

async function v1Probe(url: URL, token: string): Promise<Probe> {
  const client = new V1Client({ name: 'v1-client', version: '1.0.0' }, { capabilities: { elicitation: {} } });
  const logs: string[] = [];
  const elicited: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (r) => {
    elicited.push(r.params.message);
    return answer(r.params.message) as never;
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
  let changes = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changes++);
  const transport = new V1Transport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return {
    name: 'v1',
    callTool: (name, args, o = {}) => client.callTool({ name, arguments: args }, undefined, o) as Promise<{ content?: unknown }>,
    listTools: async () => (await client.listTools()).tools,
    readResource: (uri) => client.readResource({ uri }),
    getPrompt: (name, args) => client.getPrompt({ name, arguments: args }),
    serverVersion: () => client.getServerVersion(),
    logs,
    elicited,
    changes: () => changes,
    close: () => client.close(),
  };
}

async function v2Probe(url: URL, token: string): Promise<Probe> {
  const client = new V2Client({ name: 'v2-client', version: '2.0.0' }, { capabilities: { elicitation: {} } });
  const logs: string[] = [];
  const elicited: string[] = [];
  client.setRequestHandler('elicitation/create', async (r) => {
    const message = (r.params as { message: string }).message;
    elicited.push(message);
    return answer(message) as never;
  });
  client.setNotificationHandler('notifications/message', (n) => void logs.push(String(n.params.data)));
  let changes = 0;
  client.setNotificationHandler('notifications/tools/list_changed', () => void changes++);
  const transport = new V2Transport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return {
    name: 'v2-default',
    callTool: (name, args, o = {}) => client.callTool({ name, arguments: args }, o) as Promise<{ content?: unknown }>,
    listTools: async () => (await client.listTools()).tools as Array<{ name: string; inputSchema: unknown }>,
    readResource: (uri) => client.readResource({ uri }),
    getPrompt: (name, args) => client.getPrompt({ name, arguments: args }),
    serverVersion: () => client.getServerVersion(),
    logs,
    elicited,
    changes: () => changes,
    close: () => client.close(),
  };
}

function text(result: { content?: unknown }): string {
  return ((result.content as Array<{ text?: string }>)[0]?.text ?? '') as string;
}

describe('2025-era clients through the gateway to a 2026-07-28 server', () => {
  let http: RunningV2Server;
  let httpStrict: RunningV2Server;
  let gw: TestGateway;

  before(async () => {
    http = await startV2HttpServer();
    httpStrict = await startV2HttpServer({ legacy: 'reject' });
    gw = await startTestGateway({
      connections: {
        'http-default': { http: { url: http.url } },
        'http-modern': { http: { url: httpStrict.url, protocol: '2026-07-28' } },
        'stdio-default': { stdio: v2StdioCommand() },
        'stdio-modern': { stdio: { ...v2StdioCommand({ legacy: 'reject' }), processes: 2 } },
      },
    });
  });

  after(async () => {
    await gw.stop();
    await http.stop();
    await httpStrict.stop();
  });

  for (const connection of ['http-default', 'http-modern', 'stdio-default', 'stdio-modern']) {
    for (const make of [v1Probe, v2Probe]) {
      it(`${connection}, ${make === v1Probe ? 'v1 client' : 'v2 client (default mode)'}: tools, resources, prompts, logging, progress, MRTR elicitation, cancellation, list_changed`, async () => {
        const c = await make(gw.mcp(connection), gw.token);
        try {
          assert.deepEqual((c.serverVersion() as { name: string }).name, 'v2-fixture', 'initialize answered from server/discover');
          const tools = await c.listTools();
          assert.ok(tools.some((t) => t.name === 'region-query'));
          assert.equal(text(await c.callTool('echo', { text: 'héllo' })), 'echo: héllo');
          assert.equal(text(await c.callTool('region-query', { region: 'eu-west1', query: 'select 1' })), 'region=eu-west1 query=select 1');
          let progressed = 0;
          assert.equal(text(await c.callTool('progress', { steps: 3 }, { onprogress: () => progressed++ })), 'done 3');
          assert.equal(progressed, 3, 'every progress notification reached the client');
          assert.equal(text(await c.callTool('log', { message: `note-${c.name}` })), `logged note-${c.name}`);
          await waitFor(() => c.logs.includes(`note-${c.name}`), 'the log message');
          const resource = (await c.readResource('demo://greeting')) as { contents: Array<{ text: string }> };
          assert.equal(resource.contents[0]?.text, 'Hello from v2');
          const prompt = (await c.getPrompt('greet', { name: 'Bo' })) as { messages: Array<{ content: { text: string } }> };
          assert.equal(prompt.messages[0]?.content.text, 'Please greet Bo');
          // Two rounds of input, each a real elicitation request to this client; the server's requestState stays inside.
          assert.equal(text(await c.callTool('ask', {})), 'Hello Ada, confirmed');
          assert.deepEqual(c.elicited, ['Your name?', 'Greet Ada?']);
          // Cancellation: the call is abandoned, the server stops its work, and the link serves the next call.
          const abort = new AbortController();
          const ms = 60_000 + Math.floor(Math.random() * 1000);
          const slow = c.callTool('slow', { ms }, { signal: abort.signal });
          const server = connection === 'http-default' ? http : connection === 'http-modern' ? httpStrict : undefined;
          if (server !== undefined) await waitFor(() => server.events.includes(`started:${ms}`), 'the slow call to start');
          else await new Promise((r) => setTimeout(r, 300));
          abort.abort();
          await assert.rejects(slow);
          if (server !== undefined) await waitFor(() => server.events.includes(`cancelled:${ms}`), 'the server to see the cancellation');
          assert.equal(text(await c.callTool('echo', { text: 'after' })), 'echo: after');
          // list_changed: the gateway listens upstream (subscriptions/listen) and tells the session.
          const changes = c.changes();
          assert.equal(text(await c.callTool('touch-tools', {})), 'touched');
          await waitFor(() => c.changes() > changes, 'notifications/tools/list_changed');
        } finally {
          await c.close();
        }
      });
    }
  }
});
