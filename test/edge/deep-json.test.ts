import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { maxJsonDepth, nestsDeeperThan } from '../../src/protocol/json-depth.js';
import { ErrorCode, parseBody } from '../../src/protocol/jsonrpc.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize, sseEvents } from '../helpers/raw-http.js';

/**
 * A client message nested ten thousand levels deep parses, then overflows the stack of whatever walks it next
 * (JSON.stringify on the way to the server): it used to end in HTTP 500 with its id stuck "in flight" (409 when
 * reused). It is refused with a clear 400 before anything walks it, and the id is free for the next request.
 */

/** A tools/call whose arguments nest `depth` levels deep (built as text: the test must not overflow either). */
function deepCall(id: number, depth: number): string {
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{"message":"deep","x":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
}

const call = (id: number) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'flat' } } });

describe('nesting depth of client JSON', () => {
  it('counts arrays and objects, not brackets inside strings', () => {
    assert.equal(nestsDeeperThan('[[[]]]', 3), false);
    assert.equal(nestsDeeperThan('[[[[]]]]', 3), true);
    assert.equal(nestsDeeperThan('{"a":{"b":[1]}}', 3), false);
    assert.equal(nestsDeeperThan('{"a":"[[[[[[\\"[[[["}', 1), false);
  });

  it('parseBody refuses a message deeper than the bound, with an Invalid Request error naming it', () => {
    assert.throws(() => parseBody(deepCall(1, 10_000)), { code: ErrorCode.InvalidRequest, message: new RegExp(`more than ${maxJsonDepth} levels deep`) });
    assert.equal(parseBody(deepCall(1, maxJsonDepth - 10)).messages.length, 1);
  });

  describe('at the gateway', () => {
    let echo: EchoServer;
    let gw: TestGateway;

    before(async () => {
      echo = await startEchoServer();
      gw = await startTestGateway({ connections: { echo: { http: { url: echo.url }, tools: { pin: false } } } });
    });

    after(async () => {
      await gw?.stop();
      await echo?.stop();
    });

    it('Streamable HTTP: 400 saying why, nothing reaches the server, and the same id then works', async () => {
      const endpoint = gw.mcp('echo');
      const sessionId = await rawInitialize(endpoint, gw.auth);
      const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
      const refused = await fetch(endpoint, { method: 'POST', headers, body: deepCall(7, 10_000) });
      assert.equal(refused.status, 400);
      const body = (await refused.json()) as { error: { code: number; message: string } };
      assert.equal(body.error.code, ErrorCode.InvalidRequest);
      assert.match(body.error.message, /more than 512 levels deep/);
      assert.ok(!echo.received.some((m) => m.params?.arguments?.message === 'deep'), 'the deep message never reached the server');

      const again = await fetch(endpoint, { method: 'POST', headers, body: call(7) });
      assert.equal(again.status, 200, 'the id is not stuck in flight');
      const answer = (await again.json()) as { id: number; result: { content: Array<{ text: string }> } };
      assert.equal(answer.id, 7);
      assert.equal(answer.result.content[0]!.text, 'Echo: flat');

      // Just inside the bound still goes through.
      const inside = await fetch(endpoint, { method: 'POST', headers, body: deepCall(8, maxJsonDepth - 10) });
      assert.equal(inside.status, 200, await inside.clone().text());
      assert.equal(((await inside.json()) as { id: number }).id, 8);
      await fetch(endpoint, { method: 'DELETE', headers });
    });

    it('legacy SSE: the POST is refused with 400 and the session keeps serving', async () => {
      const controller = new AbortController();
      const stream = await fetch(gw.sse('echo'), { headers: { ...gw.auth, accept: 'text/event-stream' }, signal: controller.signal });
      assert.equal(stream.status, 200);
      const events = sseEvents(stream.body!);
      const endpointEvent = await events.next();
      const messages = new URL(String(endpointEvent.value?.data), gw.url);
      const post = (body: string) => fetch(messages, { method: 'POST', headers: { ...gw.auth, 'content-type': 'application/json' }, body });
      const init = {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'deep', version: '1' } },
      };
      assert.equal((await post(JSON.stringify(init))).status, 202);
      assert.equal(JSON.parse(String((await events.next()).value?.data)).id, 1);
      assert.equal((await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))).status, 202);

      const refused = await post(deepCall(2, 10_000));
      assert.equal(refused.status, 400);
      assert.match(((await refused.json()) as { error: { message: string } }).error.message, /more than 512 levels deep/);

      assert.equal((await post(call(2))).status, 202);
      const answer = JSON.parse(String((await events.next()).value?.data)) as { id: number; result: { content: Array<{ text: string }> } };
      assert.equal(answer.id, 2);
      assert.equal(answer.result.content[0]!.text, 'Echo: flat');
      controller.abort();
    });
  });
});
