import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { serve } from '@hono/node-server';
import { createMcpHandler } from '@modelcontextprotocol/server';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { eraSwitchServerPath } from '../fixtures/era-switch-server.js';
import { buildV2Server } from '../fixtures/v2-server.js';
import { connectV2 } from '../helpers/modern.js';
import { childPids, isAlive } from '../helpers/everything.js';
import { waitFor } from '../helpers/wait.js';
import { closeClient, connectClient } from '../helpers/client.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The era of a `protocol: auto` stdio server is not kept for the gateway's life: a server that comes back as a
 * 2026-07-28-only one (it refuses initialize with -32022) is asked again, and a slow-starting modern-only server,
 * silent past the probe timeout, is served as legacy only until its late server/discover answer says modern (it
 * starts 2.5 s late: certainly past a 1 s probe timeout, and well within the 12 s it is listened to).
 */

/** One client session through the gateway: the echo tool's answer, or why the session failed. */
async function echoThrough(gw: TestGateway, connection: string): Promise<string> {
  const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: gw.auth } });
  try {
    const { client } = await connectClient(transport);
    try {
      const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
      return JSON.stringify(result.content);
    } finally {
      await closeClient(client, transport);
    }
  } catch (err) {
    return `failed: ${(err as Error).message}`;
  }
}

/** Sessions one after another until one answers as `wanted` (at most `attempts`): every outcome, in order. */
async function until(gw: TestGateway, connection: string, wanted: RegExp, attempts: number): Promise<string[]> {
  const outcomes: string[] = [];
  while (outcomes.length < attempts) {
    outcomes.push(await echoThrough(gw, connection));
    if (wanted.test(outcomes.at(-1)!)) break;
  }
  return outcomes;
}

describe('upstream era verdicts are asked again', () => {
  let dir: string;
  let gw: TestGateway;
  const switching = () => join(dir, 'switching.json');
  const slow = () => join(dir, 'slow.json');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'era-reprobe-'));
    writeFileSync(switching(), JSON.stringify({ mode: 'legacy' }));
    writeFileSync(slow(), JSON.stringify({ mode: 'modern', delayMs: 2500 }));
    const stdio = (file: string, extra: Record<string, unknown> = {}) => ({
      command: process.execPath,
      args: [eraSwitchServerPath, file],
      spares: 0,
      ...extra,
    });
    gw = await startTestGateway({
      connections: {
        switching: { stdio: stdio(switching()), tools: { pin: false } },
        slow: { stdio: stdio(slow(), { probeTimeout: '1s' }), tools: { pin: false } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a legacy verdict is dropped when the server comes back 2026-07-28-only, and the next session finds it modern', async () => {
    assert.match(await echoThrough(gw, 'switching'), /legacy echo: hi/);
    writeFileSync(switching(), JSON.stringify({ mode: 'modern' }));
    // The first session after the change may still take the legacy verdict (and fail on -32022); the next asks again.
    const outcomes = await until(gw, 'switching', /"echo: hi"/, 3);
    assert.match(outcomes.at(-1)!, /"echo: hi"/, outcomes.join('\n'));
    assert.ok(outcomes.length <= 2, outcomes.join('\n'));
    assert.match(gw.log.text, /the server's era is asked again: it contradicted the verdict/);
  });

  it('a slow-starting 2026-07-28-only server is not taken for legacy for good: its late answer makes it modern', async () => {
    const outcomes = await until(gw, 'slow', /"echo: hi"/, 6);
    assert.match(outcomes.at(-1)!, /"echo: hi"/, outcomes.join('\n'));
    assert.match(gw.log.text, /did not answer server\/discover in time: served as a 2025-era server meanwhile/);
  });
});

/**
 * One URL whose server is switched: a 2026-07-28-only v2 SDK server (`echo` answers "echo: <text>"), or a stateless
 * 2025-era v1 SDK server (`echo` answers "legacy echo: <text>"), as a server redeployed as another version.
 */
async function startSwitchingHttp(): Promise<{ url: string; legacy(): void; stop(): Promise<void> }> {
  const modern = createMcpHandler(buildV2Server(), { legacy: 'reject' });
  let mode: 'modern' | 'legacy' = 'modern';
  const legacyAnswer = async (req: Request) => {
    const server = new Server({ name: 'switched-legacy', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [{ name: 'echo', description: 'Echoes', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } }],
    }));
    server.setRequestHandler(CallToolRequestSchema, async (r) => ({
      content: [{ type: 'text', text: `legacy echo: ${String((r.params.arguments as { text?: unknown })?.text)}` }],
    }));
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    await server.connect(transport);
    return transport.handleRequest(req);
  };
  const http = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: (req: Request) => (mode === 'modern' ? modern.fetch(req) : legacyAnswer(req)), port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    legacy: () => {
      mode = 'legacy';
    },
    stop: async () => {
      await modern.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

describe('a modern upstream that comes back legacy is asked again', () => {
  let dir: string;
  let gw: TestGateway;
  let forLegacy: Awaited<ReturnType<typeof startSwitchingHttp>>;
  let forModern: Awaited<ReturnType<typeof startSwitchingHttp>>;
  const comeback = () => join(dir, 'comeback.json');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'era-comeback-'));
    writeFileSync(comeback(), JSON.stringify({ mode: 'modern' }));
    forLegacy = await startSwitchingHttp();
    forModern = await startSwitchingHttp();
    gw = await startTestGateway({
      connections: {
        'http-legacy-client': { http: { url: forLegacy.url }, tools: { pin: false } },
        'http-modern-client': { http: { url: forModern.url }, tools: { pin: false } },
        // A probe timeout no loaded machine reaches: the first process is certainly found modern (not silent).
        comeback: { stdio: { command: process.execPath, args: [eraSwitchServerPath, comeback()], spares: 0, probeTimeout: '60s' }, tools: { pin: false } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await forLegacy?.stop();
    await forModern?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('over HTTP, to a 2025-era client: the session after the refused modern call is served by the legacy server', async () => {
    assert.match(await echoThrough(gw, 'http-legacy-client'), /"echo: hi"/);
    forLegacy.legacy();
    const outcomes = await until(gw, 'http-legacy-client', /legacy echo: hi/, 3);
    assert.match(outcomes.at(-1)!, /legacy echo: hi/, outcomes.join('\n'));
    assert.ok(outcomes.length <= 2, outcomes.join('\n'));
    assert.match(gw.log.text, /the server's era is asked again: it contradicted the verdict/);
    assert.match(gw.log.text, /answered as a 2025-era server \(Bad Request: Unsupported protocol version/);
  });

  it('over HTTP, to a 2026-07-28 client: its next request after the refused one is served by the legacy server', async () => {
    const client = await connectV2(gw.mcp('http-modern-client'), gw.auth, { pin: '2026-07-28' });
    try {
      const echo = async () => {
        try {
          return JSON.stringify((await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).content);
        } catch (err) {
          return `failed: ${(err as Error).message}`;
        }
      };
      assert.match(await echo(), /"echo: hi"/);
      forModern.legacy();
      const outcomes: string[] = [];
      while (outcomes.length < 3 && !/legacy echo: hi/.test(outcomes.at(-1) ?? '')) outcomes.push(await echo());
      assert.match(outcomes.at(-1)!, /legacy echo: hi/, outcomes.join('\n'));
      assert.ok(outcomes.length <= 2, `at most the one request that found out fails: ${outcomes.join('\n')}`);
    } finally {
      await client.close();
    }
  });

  it('over stdio: a server process started again as a 2025-era server is asked server/discover, and the era asked again', async () => {
    assert.match(await echoThrough(gw, 'comeback'), /"echo: hi"/);
    // The server is replaced by a 2025-era one: its running process ends, the next one the pool starts is legacy.
    writeFileSync(comeback(), JSON.stringify({ mode: 'legacy' }));
    const cmdline = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return ''; // gone meanwhile
      }
    };
    const ours = () => childPids().filter((pid) => isAlive(pid) && cmdline(pid).includes(comeback()));
    const running = ours();
    assert.ok(running.length >= 1, 'the modern process runs');
    const ended = () => gw.log.text.split('a modern stdio server process ended').length - 1;
    const endedBefore = ended();
    for (const pid of running) process.kill(pid);
    await waitFor(() => running.every((pid) => !isAlive(pid)), 'the modern process gone');
    // Until the gateway has seen the exit, a request may still be routed to the dead process (and fail for it).
    await waitFor(() => ended() >= endedBefore + running.length, 'the gateway to see the modern process end');
    const outcomes = await until(gw, 'comeback', /legacy echo: hi/, 3);
    assert.match(outcomes.at(-1)!, /legacy echo: hi/, outcomes.join('\n'));
    assert.ok(outcomes.length <= 2, outcomes.join('\n'));
    assert.match(gw.log.text, /a process it started is not a 2026-07-28 server/);
  });
});
