import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client as V2Client } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  type ElicitRequest,
  ElicitRequestSchema,
  ListResourcesRequestSchema,
  ReadResourceRequestSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, startV2Server, type V2Server } from '../helpers/modern.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * One virtual server over three members: server-everything (stdio), server-filesystem (stdio) and a Streamable HTTP
 * server the test defines (the v2 SDK's), used by the v1 client and by the v2 client pinned to 2026-07-28. The lists
 * are merged and prefixed, each call goes to its member under the server's own name, and what a member sends
 * (progress, an elicitation, a list change) reaches the client; the recording names the member that served each call.
 */

type Named = { name: string; description?: string };
type Content = Array<{ type: string; text?: string }>;

/** The paging member's resources, listed two to a page. */
const pagedUris = ['pages://1', 'pages://2', 'pages://3', 'pages://4', 'pages://5'];

/** A stateless Streamable HTTP server (the v1 SDK's) whose resources/list comes in pages of two. */
async function startPagingServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const http: HttpServer = createServer(async (req, res) => {
    const server = new Server({ name: 'pages', version: '1.0.0' }, { capabilities: { resources: {} } });
    server.setRequestHandler(ListResourcesRequestSchema, async (r) => {
      const start = Number(r.params?.cursor ?? 0);
      const resources = pagedUris.slice(start, start + 2).map((uri) => ({ uri, name: uri }));
      return start + 2 < pagedUris.length ? { resources, nextCursor: String(start + 2) } : { resources };
    });
    server.setRequestHandler(ReadResourceRequestSchema, async (r) => ({ contents: [{ uri: r.params.uri, text: `paged ${r.params.uri}` }] }));
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    stop: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}

const text = (r: unknown) => (((r as { content?: unknown }).content ?? []) as Content).map((c) => c.text ?? '').join('');

describe('a virtual server over server-everything, server-filesystem and a Streamable HTTP server', () => {
  let gw: TestGateway;
  let root: string;
  let web: V2Server;
  let paging: Awaited<ReturnType<typeof startPagingServer>>;

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-virtual-')));
    writeFileSync(join(root, 'hello.txt'), 'hello from disk\n');
    const filesystem = resolve(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
    web = await startV2Server('stateless');
    paging = await startPagingServer();
    gw = await startTestGateway({
      connections: {
        everything: { stdio: everythingStdio() },
        files: { stdio: { command: process.execPath, args: [filesystem, root] } },
        web: { http: { url: web.url } },
        pages: { http: { url: paging.url, protocol: '2025-11-25' } },
      },
      virtualServers: {
        toolbox: {
          description: 'The test toolbox',
          access: { groups: ['*'] },
          members: [
            { connection: 'everything' },
            {
              connection: 'files',
              prefix: 'fs_',
              tools: { exclude: ['*move*'] },
              rename: { read_text_file: 'cat' },
              descriptions: { read_text_file: 'Prints a file' },
            },
            { connection: 'web' },
            { connection: 'pages' },
          ],
        },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await web?.stop();
    await paging?.stop();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  describe('the v1 client', () => {
    let client: Client;
    let transport: StreamableHTTPClientTransport;
    const elicited: ElicitRequest['params'][] = [];
    let resourceChanges = 0;

    before(async () => {
      transport = new StreamableHTTPClientTransport(gw.mcp('toolbox'), { requestInit: { headers: gw.auth } });
      // No roots: server-filesystem would take the client's roots for its allowed directories.
      client = new Client({ name: 'virtual-v1', version: '1.0.0' }, { capabilities: { elicitation: { form: {} } } });
      client.setRequestHandler(ElicitRequestSchema, async (req) => {
        elicited.push(req.params);
        return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
      });
      client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void resourceChanges++);
      await client.connect(transport);
    });

    after(async () => {
      await transport?.terminateSession().catch(() => {});
      await client?.close();
    });

    it('is initialized as the virtual server, with the capabilities of its members', () => {
      assert.equal(client.getServerVersion()?.name, 'toolbox');
      const caps = client.getServerCapabilities();
      assert.ok(caps?.tools && caps.prompts && caps.resources);
      assert.match(client.getInstructions() ?? '', /The test toolbox/);
    });

    it('lists the members’ tools merged, prefixed, renamed and selected, in member order', async () => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const n of ['everything__echo', 'everything__trigger-long-running-operation', 'cat', 'fs_list_directory', 'web__echo'])
        assert.ok(names.includes(n), `${n} in ${names}`);
      assert.ok(!names.includes('fs_read_text_file'), 'renamed away');
      assert.ok(!names.some((n) => n.includes('move')), 'excluded');
      assert.ok(!names.includes('echo'), 'every name has its prefix');
      assert.ok(names.indexOf('everything__echo') < names.indexOf('cat') && names.indexOf('cat') < names.indexOf('web__echo'), 'member order');
      assert.equal((tools as Named[]).find((t) => t.name === 'cat')?.description, 'Prints a file');
    });

    it('routes calls to each member under the server’s own name', async () => {
      assert.equal(text(await client.callTool({ name: 'everything__echo', arguments: { message: 'hi' } })), 'Echo: hi');
      assert.match(text(await client.callTool({ name: 'cat', arguments: { path: join(root, 'hello.txt') } })), /hello from disk/);
      assert.match(text(await client.callTool({ name: 'fs_list_directory', arguments: { path: root } })), /hello\.txt/);
      assert.equal(text(await client.callTool({ name: 'web__echo', arguments: { message: 'over http' } })), 'Echo: over http');
    });

    it('refuses a name no member exposes', async () => {
      await assert.rejects(client.callTool({ name: 'fs_read_text_file', arguments: { path: join(root, 'hello.txt') } }), /Unknown tool: fs_read_text_file/);
      await assert.rejects(client.callTool({ name: 'nobody__echo', arguments: {} }), /Unknown tool: nobody__echo/);
    });

    it('reads a resource of each member that has some', async () => {
      const { resources } = await client.listResources();
      const own = resources.find((r) => r.uri === 'demo://a');
      assert.ok(own, 'the HTTP member’s resource is listed under its own URI');
      assert.equal(((await client.readResource({ uri: 'demo://a' })).contents[0] as { text?: string }).text, 'A');
      const everything = resources.find((r) => r.uri !== 'demo://a');
      assert.ok(everything, 'server-everything’s resources are listed');
      const read = await client.readResource({ uri: everything.uri });
      assert.equal(read.contents[0]?.uri, everything.uri);
    });

    it('lists every member’s resources, paging with one cursor across members', async () => {
      const uris: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await client.listResources(cursor === undefined ? {} : { cursor });
        uris.push(...page.resources.map((r) => r.uri));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== undefined && pages < 50);
      assert.ok(pages >= 3, `a member that lists in pages of two is followed across pages (${pages} pages)`);
      assert.equal(new Set(uris).size, uris.length, 'no resource twice');
      // Every page of server-everything's own list, then the other members' (the HTTP one's, the paging one's), in member order.
      const direct = new Client({ name: 'direct', version: '1.0.0' });
      const t = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
      await direct.connect(t);
      try {
        const own: string[] = [];
        let c: string | undefined;
        do {
          const page = await direct.listResources(c === undefined ? {} : { cursor: c });
          own.push(...page.resources.map((r) => r.uri));
          c = page.nextCursor;
        } while (c !== undefined);
        assert.deepEqual(
          uris.filter((u) => own.includes(u)),
          own,
        );
        assert.deepEqual(
          uris.slice(own.length),
          ['demo://a', ...pagedUris].filter((u) => u !== 'demo://a' || uris.includes(u)),
        );
      } finally {
        await t.terminateSession().catch(() => {});
        await direct.close();
      }
      assert.equal(((await client.readResource({ uri: 'pages://5' })).contents[0] as { text?: string }).text, 'paged pages://5');
      await assert.rejects(client.listResources({ cursor: 'not-ours' }), /Invalid cursor/);
    });

    it('gets a prompt of a member by its exposed name', async () => {
      const { prompts } = await client.listPrompts();
      const names = prompts.map((p) => p.name);
      assert.ok(names.includes('everything__simple-prompt') && names.includes('web__greet'), String(names));
      const prompt = await client.getPrompt({ name: 'everything__simple-prompt' });
      assert.ok(prompt.messages.length > 0);
      const greet = await client.getPrompt({ name: 'web__greet' });
      assert.deepEqual(greet.messages[0]?.content, { type: 'text', text: 'hi' });
    });

    it('completes a prompt argument of a member by the prompt’s exposed name', async () => {
      const done = await client.complete({
        ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
        argument: { name: 'department', value: 'S' },
      });
      assert.deepEqual(done.completion.values, ['Sales', 'Support']);
    });

    it('passes a member’s progress to the client', async () => {
      const progress: number[] = [];
      const result = await client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      assert.deepEqual(progress, [1, 2, 3]);
      assert.match(text(result), /Long running operation completed/);
    });

    it('brings a member’s elicitation to the client and its answer back', async () => {
      const before = elicited.length;
      const result = await client.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
      assert.equal(elicited.length, before + 1, 'the client was asked once');
      assert.match(JSON.stringify(result.content), /Ada Lovelace/);
    });

    it('subscribes to a member’s resource by its URI, and brings its updates', async () => {
      const updated: string[] = [];
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
      const { resources } = await client.listResources();
      const uri = resources[0]!.uri;
      await client.subscribeResource({ uri });
      // server-everything sends an update for each subscribed resource at once when simulated updates start.
      await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
      await waitFor(() => updated.includes(uri), 'resources/updated to reach the client');
      await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
      await client.unsubscribeResource({ uri });
    });

    it('tells the client once when a member’s list changes', async () => {
      const before = resourceChanges;
      // server-everything registers a session resource for the gzip it makes: its resource list changes.
      await client.callTool({
        name: 'everything__gzip-file-as-resource',
        arguments: { name: 'hello.gz', data: 'data:text/plain;base64,aGVsbG8=', outputType: 'resourceLink' },
      });
      await waitFor(() => resourceChanges > before, 'resources/list_changed to reach the client');
      // Changes within 100 ms are one notification: past that window, still one.
      await new Promise((r) => setTimeout(r, 300));
      await client.ping();
      assert.equal(resourceChanges, before + 1);
      const { resources } = await client.listResources();
      assert.ok(
        resources.some((r) => r.name === 'hello.gz'),
        'the new resource is listed',
      );
    });

    it('records which member served each call, and the member sessions as edge virtual', async () => {
      const store = gw.gateway.recorder!.store;
      const sessions = await store.listSessions({ limit: 100 });
      const virtual = sessions.filter((s) => s.connection === 'toolbox');
      assert.ok(virtual.length >= 1);
      const verdicts: Array<{ stage: string; action: string; reason?: string; messageId?: unknown }> = [];
      for (const s of virtual) for (const e of await allEvents(store, s.id)) if (e.kind === 'verdict') verdicts.push(JSON.parse(e.payload));
      const routes = verdicts.filter((v) => v.stage === 'virtual');
      const files = sessions.find((s) => s.connection === 'files' && s.edge === 'virtual');
      assert.ok(files, 'the member session of files is recorded with edge virtual');
      assert.ok(
        routes.some((v) => v.action === 'pass' && v.reason === `served by member 'files' (session ${files.id}) as tools/call read_text_file`),
        JSON.stringify(routes, null, 1),
      );
      assert.ok(routes.some((v) => /served by member 'web' \(session \S+\) as tools\/call echo/.test(v.reason ?? '')));
      assert.ok(
        routes.some((v) =>
          /^merged from member 'everything' \(session \S+\), member 'files' \(session \S+\), member 'web' \(session \S+\)$/.test(v.reason ?? ''),
        ),
        'a tools/list records whose lists it merged',
      );
      const opening = JSON.parse((await allEvents(store, files.id))[0]!.payload) as { virtual?: { server: string; session: string } };
      assert.equal(opening.virtual?.server, 'toolbox');
      assert.ok(virtual.some((s) => s.id === opening.virtual?.session));
    });
  });

  describe('the v2 client pinned to 2026-07-28', () => {
    let client: V2Client;
    const elicited: unknown[] = [];

    before(async () => {
      client = await connectV2(gw.mcp('toolbox'), gw.auth, { pin: '2026-07-28' }, elicited);
    });
    after(async () => client?.close());

    it('lands on the modern era', () => {
      assert.equal(client.getProtocolEra(), 'modern');
    });

    it('lists the merged tools and calls each member', async () => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const n of ['everything__echo', 'cat', 'web__echo']) assert.ok(names.includes(n), `${n} in ${names}`);
      assert.equal(text(await client.callTool({ name: 'everything__echo', arguments: { message: 'modern' } })), 'Echo: modern');
      assert.match(text(await client.callTool({ name: 'cat', arguments: { path: join(root, 'hello.txt') } })), /hello from disk/);
      assert.equal(text(await client.callTool({ name: 'web__echo', arguments: { message: 'modern http' } })), 'Echo: modern http');
    });

    it('reads a resource and gets a prompt', async () => {
      const read = await client.readResource({ uri: 'demo://a' });
      assert.equal((read.contents[0] as { text?: string }).text, 'A');
      const prompt = await client.getPrompt({ name: 'everything__simple-prompt' });
      assert.ok(prompt.messages.length > 0);
    });

    it('receives a member’s progress', async () => {
      const progress: number[] = [];
      const result = await client.callTool(
        { name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        { onprogress: (p) => progress.push(p.progress) },
      );
      assert.deepEqual(progress, [1, 2, 3]);
      assert.match(text(result), /Long running operation completed/);
    });

    it('follows a member’s resource and list changes on a listen stream', async () => {
      const updated: string[] = [];
      let changes = 0;
      client.setNotificationHandler('notifications/resources/updated', (n) => void updated.push(n.params.uri));
      client.setNotificationHandler('notifications/resources/list_changed', () => void changes++);
      const { resources } = await client.listResources();
      const uri = resources.find((r) => r.uri !== 'demo://a' && !r.uri.startsWith('pages://'))!.uri;
      const subscription = await client.listen({ resourceSubscriptions: [uri], resourcesListChanged: true });
      try {
        assert.deepEqual(subscription.honoredFilter.resourceSubscriptions, [uri]);
        await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
        await waitFor(() => updated.includes(uri), 'the update arrives on the listen stream');
        await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
        await client.callTool({
          name: 'everything__gzip-file-as-resource',
          arguments: { name: 'modern.gz', data: 'data:text/plain;base64,aGVsbG8=', outputType: 'resourceLink' },
        });
        await waitFor(() => changes > 0, 'resources/list_changed on the listen stream');
      } finally {
        await subscription.close();
      }
    });

    it('answers a member’s elicitation as an MRTR round', async () => {
      const before = elicited.length;
      const result = await client.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
      assert.equal(elicited.length, before + 1, 'the client was asked once');
      assert.match(JSON.stringify(result.content), /Ada Lovelace/);
    });
  });
});
