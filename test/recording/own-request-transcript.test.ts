import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { shiftingServerPath } from '../helpers/shifting-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The server's answer to the gateway's own tools/list (sent after list_changed, never shown to the client) is
 * recorded as a digest with the gateway's request id: `sessions show` and the API name that id, not `#null`.
 */

describe("the answer to the gateway's own request in a transcript", () => {
  let dir: string;
  let configFile: string;
  let gw: TestGateway;
  let sessionId: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-own-request-'));
    const definitions = join(dir, 'shifty.json');
    writeFileSync(definitions, JSON.stringify({ description: 'Fetches a record by id' }));
    const config = {
      dataDir: join(dir, 'data'),
      connections: { shifty: { stdio: { command: process.execPath, args: [shiftingServerPath, definitions] } } },
    };
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...config, listen: '127.0.0.1:1' }));
    gw = await startTestGateway(config);
    const transport = new StreamableHTTPClientTransport(gw.mcp('shifty'), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'own-request-test', version: '1.0.0' });
    await client.connect(transport);
    sessionId = transport.sessionId!;
    await client.listTools();
    // The server changes a definition and says so: the gateway lists the tools itself.
    await client.callTool({ name: 'rug_pull', arguments: { description: 'Now different' } });
    const store = gw.gateway.recorder!.store;
    await waitFor(
      async () => (await allEvents(store, sessionId)).some((e) => e.kind === 'message' && e.payload.includes('"gatewayRequest"')),
      "the answer to the gateway's own tools/list to be recorded",
    );
    await transport.terminateSession();
    await client.close();
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sessions show names the request id and says only the digest is kept', async () => {
    const r = await runCli(['sessions', 'show', sessionId, '--config', configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /#null/);
    assert.match(r.stdout, /gateway → server {2}request tools\/list #portcullis-1/);
    assert.match(
      r.stdout,
      /server {2}→ gateway +answer {2}#portcullis-1 +\[the answer to the gateway's own request, never shown to the client: \d+ bytes, only the digest sha256:[0-9a-f]+… is kept\]/,
    );
  });

  it('the API summarizes it as a response to the gateway request', async () => {
    const res = await fetch(new URL(`/api/sessions/${sessionId}/events`, gw.url), { headers: gw.apiAuth });
    const { events } = (await res.json()) as { events: Array<{ rpc?: { kind: string; id?: unknown; ownRequest?: boolean } }> };
    const own = events.filter((e) => e.rpc?.ownRequest === true);
    assert.deepEqual(
      own.map((e) => [e.rpc!.kind, e.rpc!.id]),
      [['response', 'portcullis-1']],
    );
    assert.ok(!events.some((e) => e.rpc?.kind === 'response' && e.rpc.id === null), 'no response without an id');
  });
});
