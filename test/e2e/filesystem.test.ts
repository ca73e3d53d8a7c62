import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** `@modelcontextprotocol/server-filesystem` over stdio behind the gateway: reads, writes and refusals. */
describe('server-filesystem through the gateway', () => {
  let gw: TestGateway;
  let root: string;
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-fs-')));
    writeFileSync(join(root, 'hello.txt'), 'hello from disk\n');
    const entry = resolve(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
    gw = await startTestGateway({ connections: { files: { stdio: { command: process.execPath, args: [entry, root] } } } });
    transport = new StreamableHTTPClientTransport(gw.mcp('files'), { requestInit: { headers: gw.auth } });
    client = new Client({ name: 'fs-test', version: '1.0.0' });
    await client.connect(transport);
  });

  after(async () => {
    await transport.terminateSession().catch(() => {});
    await client.close();
    await gw.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('lists, reads and writes inside the allowed directory', async () => {
    assert.match(text(await client.callTool({ name: 'list_directory', arguments: { path: root } })), /hello\.txt/);
    assert.match(text(await client.callTool({ name: 'read_text_file', arguments: { path: join(root, 'hello.txt') } })), /hello from disk/);
    await client.callTool({ name: 'write_file', arguments: { path: join(root, 'new.txt'), content: 'written through the gateway' } });
    assert.equal(readFileSync(join(root, 'new.txt'), 'utf8'), 'written through the gateway');
  });

  it("relays the server's refusal outside its directory", async () => {
    const result = await client.callTool({ name: 'read_text_file', arguments: { path: '/etc/hostname' } });
    assert.equal(result.isError, true);
    assert.match(text(result), /denied|outside/i);
  });
});
