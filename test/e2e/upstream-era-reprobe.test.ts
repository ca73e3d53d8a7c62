import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { eraSwitchServerPath } from '../fixtures/era-switch-server.js';
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
