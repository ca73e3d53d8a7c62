import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { assertNoCredential } from '../helpers/credential-spellings.js';
import { everythingStdio, fixturePath, type RunningServer, startFixtureHttp } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';
import { wireTap } from '../helpers/wire-tap.js';

/**
 * The credentials the gateway injects never come back: a hostile HTTP server echoes the request headers (in a tool
 * result, and in the body of a 401), a stdio server prints its environment (to stdout and stderr), each in every
 * spelling (as is, JSON and `\u` escapes, URL-encoded, base64 at each alignment, hex). Neither what the client
 * receives, nor the recording, nor the gateway's log holds any of them. Masking is off on these connections: what
 * is shown is the scrubbing of known values, not pattern detection.
 */

const credentials = {
  PORTCULLIS_TEST_ECHO_BEARER: 'bt-9f8e7d6c5b4a3210zyxw',
  PORTCULLIS_TEST_ECHO_KEY: 'ak_7Hq/2+Zr=Wm&Pe"9x~Lt',
  PORTCULLIS_TEST_ECHO_ENV: 'env-S3cr3t/Val+ue=With&"q',
  PORTCULLIS_TEST_ECHO_PASSED: 'passed-0a1b2c3d4e5f6a7b',
};
const values = Object.values(credentials);

describe('injected credentials that a server sends back', () => {
  let server: RunningServer;
  let gw: TestGateway;
  const tap = wireTap();
  const clientSaw: string[] = [];

  before(async () => {
    Object.assign(process.env, credentials);
    server = await startFixtureHttp('echoing-server.js');
    const headers = { Authorization: 'Bearer ${env:PORTCULLIS_TEST_ECHO_BEARER}', 'X-Api-Key': '${env:PORTCULLIS_TEST_ECHO_KEY}' };
    const stdioEnv = { APP_TOKEN: '${env:PORTCULLIS_TEST_ECHO_ENV}' };
    gw = await startTestGateway({
      connections: {
        echo: { http: { url: server.url, headers }, masking: { enabled: false } },
        deny: { http: { url: server.url.replace('/mcp', '/deny/mcp'), headers }, masking: { enabled: false } },
        legacy: { sse: { url: server.url.replace('/mcp', '/sse'), headers }, masking: { enabled: false } },
        env: {
          stdio: { command: process.execPath, args: [fixturePath('echoing-server.js'), 'stdio'], env: stdioEnv, passEnv: ['PORTCULLIS_TEST_ECHO_PASSED'] },
          masking: { enabled: false },
        },
        everything: { stdio: { ...everythingStdio(), env: stdioEnv }, masking: { enabled: false } },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await server?.stop();
    for (const k of Object.keys(credentials)) delete process.env[k];
  });

  async function connect(connection: string): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { fetch: tap.fetch, requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'credentials-e2e', version: '1.0.0' });
    await client.connect(transport);
    return client;
  }

  it('an HTTP server echoing the request headers in a tool result: the client gets markers, not credentials', async () => {
    const client = await connect('echo');
    const result = JSON.stringify(await client.callTool({ name: 'headers', arguments: {} }));
    await client.close();
    clientSaw.push(result);
    assertNoCredential(result, values, 'the tool result');
    assert.match(result, /\[REDACTED:credential:echo\.headers\.Authorization\]/);
    assert.match(result, /\[REDACTED:credential:echo\.headers\.X-Api-Key\]/);
    assert.match(result, /content-type/, 'the rest of what the server sent is intact');
  });

  it('an HTTP server answering a call with 401 and the headers in its body: the JSON-RPC error holds no credential', async () => {
    const client = await connect('echo');
    const error = await client.callTool({ name: 'locked', arguments: {} }).then(
      () => assert.fail('the call should fail'),
      (err: Error) => err.message,
    );
    await client.close();
    clientSaw.push(error);
    assert.match(error, /HTTP 401/);
    assert.match(error, /REDACTED:credential:echo\.headers\./);
    assertNoCredential(error, values, 'the error');
  });

  it('an HTTP server answering initialize with 401 and the headers: the failed connect holds no credential', async () => {
    const error = await connect('deny').then(
      () => assert.fail('connect should fail'),
      (err: Error) => err.message,
    );
    clientSaw.push(error);
    assert.match(error, /HTTP 401/);
    assertNoCredential(error, values, 'the error');
  });

  it('a legacy HTTP+SSE server echoing the headers in a result and in a 401: the client gets markers, not credentials', async () => {
    const client = await connect('legacy');
    const result = JSON.stringify(await client.callTool({ name: 'headers', arguments: {} }));
    const error = await client.callTool({ name: 'locked', arguments: {} }).then(
      () => assert.fail('the call should fail'),
      (err: Error) => err.message,
    );
    await client.close();
    clientSaw.push(result, error);
    assertNoCredential(result, values, 'the tool result');
    assert.match(result, /\[REDACTED:credential:legacy\.headers\.Authorization\]/);
    assert.match(error, /401/);
    assertNoCredential(error, values, 'the error');
  });

  it('a stdio server printing its environment: the ${env:…} value and what passEnv passed come back as markers', async () => {
    const client = await connect('env');
    const result = JSON.stringify(await client.callTool({ name: 'env', arguments: {} }));
    await client.close();
    clientSaw.push(result);
    assertNoCredential(result, values, 'the tool result');
    assert.match(result, /APP_TOKEN raw=\[REDACTED:credential:env\.env\.APP_TOKEN\]/);
    assert.match(result, /\[REDACTED:credential:env\.env\.PORTCULLIS_TEST_ECHO_PASSED\]/);
    assert.match(result, /PATH raw=\//, 'the rest of the environment is intact');
  });

  it("server-everything's get-env: the ${env:…} value comes back as a marker", async () => {
    const client = await connect('everything');
    const result = JSON.stringify(await client.callTool({ name: 'get-env', arguments: {} }));
    await client.close();
    clientSaw.push(result);
    assertNoCredential(result, values, 'get-env');
    assert.match(result, /REDACTED:credential:everything\.env\.APP_TOKEN/);
  });

  it('nothing the client received on the wire holds a credential', async () => {
    await tap.settled();
    assert.ok(tap.received.length > 0);
    assertNoCredential(tap.received.join('\n'), values, 'the wire to the client');
  });

  it('the recording holds no credential (read back from the store)', async () => {
    const store = gw.gateway.recorder!.store;
    const sessions = await store.listSessions({ limit: 100 });
    assert.ok(sessions.length >= 6, `sessions recorded: ${sessions.length}`);
    let markers = 0;
    for (const s of sessions) {
      const text = JSON.stringify(await allEvents(store, s.id));
      assertNoCredential(text, values, `the recording of ${s.connection} ${s.id}`);
      markers += text.split('REDACTED:credential:').length - 1;
    }
    assert.ok(markers > 0, 'the recording shows where credentials were scrubbed');
  });

  it("the gateway's log holds no credential, stdio stderr included", async () => {
    // The stdio fixture prints its environment to stderr as it starts; the gateway logs each line.
    await waitFor(() => gw.log.text.includes('APP_TOKEN raw=[REDACTED:credential:env.env.APP_TOKEN]'), 'the stderr lines in the log');
    assertNoCredential(gw.log.text, values, 'the log');
    assert.match(gw.log.text, /HTTP 401/, 'the failed calls are logged');
  });
});

describe('injected credentials too short to scrub', () => {
  it('are named in a warning at start, never shown', async () => {
    process.env.PORTCULLIS_TEST_SHORT_PIN = '4821';
    const gw = await startTestGateway({
      connections: {
        short: { stdio: { command: process.execPath, args: [fixturePath('echoing-server.js'), 'stdio'], env: { PIN: '${env:PORTCULLIS_TEST_SHORT_PIN}' } } },
      },
    });
    try {
      const warning = gw.log.lines.find((l) => String(l.msg).includes('too short to be scrubbed'));
      assert.deepEqual(warning?.credentials, ['short.env.PIN']);
      assert.ok(!gw.log.text.includes('4821'));
    } finally {
      await gw.stop();
      delete process.env.PORTCULLIS_TEST_SHORT_PIN;
    }
  });
});
