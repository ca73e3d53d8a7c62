import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cliPath } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';

/** `portcullis connect` when things go wrong: the desktop client gets a JSON-RPC answer, a person gets a reason. */
describe('portcullis connect (stdio bridge) failures', () => {
  it('answers with a clear error when the gateway cannot be reached, and exits when stdin closes', async () => {
    const port = await freePort(); // nothing listens there
    const child = spawn(process.execPath, [cliPath, 'connect', 'everything', '--gateway', `http://127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } })}\n`,
    );
    const deadline = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const reply = JSON.parse(out.split('\n')[0]!) as { id: number; error: { code: number; message: string } };
    assert.equal(reply.id, 1);
    assert.equal(reply.error.code, -31000);
    assert.match(reply.error.message, new RegExp(`cannot reach the gateway at http://127.0.0.1:${port}/mcp/everything \\(ECONNREFUSED\\)`));
    assert.match(err, /is `portcullis gateway` running there\?/);
    child.stdin.end();
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
  });

  it('refuses a malformed --gateway URL with exit code 2', async () => {
    const child = spawn(process.execPath, [cliPath, 'connect', 'x', '--gateway', 'not a url'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(err, /--gateway expects a URL/);
  });
});
