import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { assertNoCredential, spellingsOf } from '../helpers/credential-spellings.js';
import { everythingStdio, fixturePath, type RunningServer, startFixtureHttp } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, modernVersion } from '../helpers/modern.js';
import { mcpHeaders } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * No token, credential or masked value ever reaches a log line. A gateway logging at debug, through its own logger
 * (redaction and scrubbing as `portcullis gateway` has them) into memory, is driven with what carries secrets: the
 * callers' bearer tokens on every edge (2025-era sessions, legacy SSE, 2026-07-28 requests) and the API, forged and garbage tokens, credentials the gateway injects
 * (an HTTP server and a stdio server that echo them back, the latter also on its stderr, which the gateway logs),
 * and results masking redacts. Then the whole log is searched for each secret in every spelling
 * (test/helpers/credential-spellings.ts: as is, JSON- and \u-escaped, URL-encoded, base64 at each alignment, hex).
 */

const injected = {
  PORTCULLIS_TEST_LOG_BEARER: 'lg-bearer-4e5d6c7b8a9f0e1d',
  PORTCULLIS_TEST_LOG_KEY: 'lk_9Qw/3+Er=Ty&Ui"7o~Pa',
  PORTCULLIS_TEST_LOG_ENV: 'log-env-S3cr3t/V4l+ue=&"x',
};

/** Values only masking's detectors find (the server holds them on its own; the gateway never injected them). */
/** A secret a client put in a malformed body: JSON.parse's error quotes a few characters of it. */
const bodySecret = 'body-secret-9d8c7b6a5f4e3d2c1b0a';

const masked = {
  aws: `AKIA${'Q4'.repeat(8)}`,
  github: `ghp_${'m7T'.repeat(12)}`,
};

describe('the log holds no secret', () => {
  let server: RunningServer;
  let gw: TestGateway;
  const tokens: string[] = [];

  before(async () => {
    Object.assign(process.env, injected);
    server = await startFixtureHttp('echoing-server.js');
    const headers = { Authorization: 'Bearer ${env:PORTCULLIS_TEST_LOG_BEARER}', 'X-Api-Key': '${env:PORTCULLIS_TEST_LOG_KEY}' };
    gw = await startTestGateway({
      connections: {
        echo: { http: { url: server.url, headers }, masking: { enabled: false } },
        env: {
          stdio: { command: process.execPath, args: [fixturePath('echoing-server.js'), 'stdio'], env: { APP_TOKEN: '${env:PORTCULLIS_TEST_LOG_ENV}' } },
          masking: { enabled: false },
        },
        everything: {
          stdio: {
            command: '/usr/bin/env',
            args: [`AWS_ACCESS_KEY_ID=${masked.aws}`, `GITHUB_TOKEN=${masked.github}`, everythingStdio().command, ...everythingStdio().args],
            spares: 0,
          },
        },
      },
    });
    tokens.push(gw.token, await gw.tokenFor('other'));
  });

  after(async () => {
    await gw?.stop();
    await server?.stop();
    for (const k of Object.keys(injected)) delete process.env[k];
  });

  async function streamable(connection: string, token = gw.token): Promise<Client> {
    const client = new Client({ name: 'log-secrets', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return client;
  }

  it('drives sessions, refusals and masked results', async () => {
    // Streamable HTTP sessions with a bearer token: injected credentials echoed in a result, in an HTTP 401 body,
    // in a stdio server's environment and stderr; masked values in results.
    const echo = await streamable('echo');
    await echo.callTool({ name: 'headers', arguments: {} });
    await echo.callTool({ name: 'locked', arguments: {} }).catch(() => {});
    await echo.close();
    const env = await streamable('env', tokens[1]);
    await env.callTool({ name: 'env', arguments: {} });
    await env.close();
    const everything = await streamable('everything');
    const result = JSON.stringify(await everything.callTool({ name: 'get-env', arguments: {} }));
    assert.ok(!result.includes(masked.aws) && result.includes('REDACTED:aws-access-key-id'), 'masking is on: the client got the marker');
    const echoed = JSON.stringify(await everything.callTool({ name: 'echo', arguments: { message: `key ${masked.github}` } }));
    assert.ok(!echoed.includes(masked.github), 'the echoed token came back masked');
    await everything.close();

    // A 2026-07-28 client (the official v2 SDK): each request carries the token, and masked results come back.
    const modern = await connectV2(gw.mcp('everything'), gw.auth, { pin: modernVersion });
    const modernResult = JSON.stringify(await modern.callTool({ name: 'get-env', arguments: {} }));
    assert.ok(!modernResult.includes(masked.github), 'masked for the modern client too');
    await modern.close();

    // A legacy HTTP+SSE session with the token.
    const legacy = new Client({ name: 'log-secrets-sse', version: '1.0.0' });
    await legacy.connect(new SSEClientTransport(gw.sse('everything'), { requestInit: { headers: gw.auth } }));
    await legacy.listTools();
    await legacy.close();

    // Forged and garbage tokens, on the data path and the API; a good token from a foreign Origin.
    const [header, payload, signature] = gw.token.split('.') as [string, string, string];
    const forged = `${header}.${payload}.${signature.slice(0, -6)}AAAAAA`;
    const garbage = 'not-a-jwt-but-a-secret-0123456789abcdef';
    tokens.push(forged, garbage);
    const init = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bad', version: '1' } },
    });
    for (const token of [forged, garbage]) {
      const bearer = { ...mcpHeaders, authorization: `Bearer ${token}` };
      for (const res of [
        await fetch(gw.mcp('everything'), { method: 'POST', headers: bearer, body: init }),
        await fetch(gw.sse('everything'), { headers: bearer }),
      ]) {
        assert.equal(res.status, 401);
        await res.text();
      }
      for (const path of ['/api/sessions', '/metrics']) {
        const res = await fetch(new URL(path, gw.url), { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 401, path);
        await res.text();
      }
    }
    // A malformed body that holds a token: the parse error the client gets quotes it; the log line does not.
    tokens.push(bodySecret);
    for (const body of [`{"jsonrpc":"2.0","id":1,"method":${bodySecret}`, `${bodySecret}"`]) {
      const malformed = await fetch(gw.mcp('everything'), { method: 'POST', headers: { ...mcpHeaders, ...gw.auth }, body });
      assert.equal(malformed.status, 400);
      await malformed.text();
    }
    const foreign = await fetch(gw.mcp('everything'), { method: 'POST', headers: { ...mcpHeaders, ...gw.auth, origin: 'http://evil.example' }, body: init });
    assert.equal(foreign.status, 403);
    const api = await fetch(new URL('/api/sessions', gw.url), { headers: gw.auth });
    assert.equal(api.status, 200);
    await api.text();
  });

  it('and no line of the log holds any of those secrets in any spelling', async () => {
    // The stdio server prints its environment on stderr as it starts; the gateway logs each line (scrubbed).
    await waitFor(() => gw.log.text.includes('[REDACTED:credential:env.env.APP_TOKEN]'), 'the stdio server stderr in the log');
    await waitFor(() => gw.log.lines.filter((l) => l.msg === 'request not authenticated').length >= 4, 'the refusals of the bad tokens');
    const text = gw.log.text;
    assert.equal(gw.log.logger.level, 'debug', 'everything the gateway logs at debug is in it');
    assertNoCredential(text, Object.values(injected), 'the log (injected credentials)');
    assertNoCredential(text, Object.values(masked), 'the log (masked values)');
    assertNoCredential(text, [bodySecret], 'the log (a malformed body)');
    // A token is searched whole in every spelling, and by its signature: JWT headers and payloads share prefixes.
    for (const token of tokens) {
      for (const form of spellingsOf(token)) assert.ok(!text.includes(form), `the log holds a spelling of a token: ${form.slice(0, 12)}…`);
      const signature = token.split('.')[2];
      if (signature !== undefined) assertNoCredential(text, [signature], 'the log (a token signature)');
    }
  });
});
