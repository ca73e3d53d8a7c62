import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describeEvent } from '../../src/recording/transcript.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import type { EventRow } from '../../src/store/types.js';
import { halfOf, plantedToken, wholeAnswer } from '../fixtures/crashing-server.js';
import { fixturePath, type RunningServer, startFixtureHttp } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents, deliveredTexts, receivedTexts } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * An upstream that dies in the middle of its answer (a real process in the suite: half a JSON-RPC message, then it
 * exits, or over HTTP only its connection breaks). The recording keeps the bytes that arrived and a truncation
 * event; the client gets a clear error that the recording shows as the gateway's own (delivered, never received
 * from the server); and when the server is gone, the session ends rather than failing each later call.
 */

describe('an upstream that crashes mid-answer', () => {
  let gw: TestGateway;
  const servers: Record<string, RunningServer> = {};

  // A credential no detector recognises, injected into `injected`'s environment: only the scrubber can catch it.
  const injected = 'Zq7-crash-credential-4410-plain';

  before(async () => {
    process.env.PORTCULLIS_TEST_CRASH_SECRET = injected;
    for (const name of ['json', 'sse', 'live', 'idle']) servers[name] = await startFixtureHttp('crashing-server.js');
    const stdio = { command: process.execPath, args: [fixturePath('crashing-server.js'), 'stdio'] };
    gw = await startTestGateway({
      connections: {
        // Masking off, so the fragment is recorded byte for byte; `masked` shows what masking does to it.
        stdio: { stdio, tools: { pin: false }, masking: { enabled: false } },
        masked: { stdio, tools: { pin: false }, masking: { enabled: true } },
        injected: { stdio: { ...stdio, env: { CRASHING_TOKEN: '${env:PORTCULLIS_TEST_CRASH_SECRET}' } }, tools: { pin: false }, masking: { enabled: false } },
        json: { http: { url: servers.json!.url }, tools: { pin: false }, masking: { enabled: false } },
        sse: { http: { url: servers.sse!.url }, tools: { pin: false }, masking: { enabled: false } },
        live: { http: { url: servers.live!.url }, tools: { pin: false }, masking: { enabled: false } },
        idle: { http: { url: servers.idle!.url }, tools: { pin: false }, masking: { enabled: false } },
      },
    });
  });

  after(async () => {
    delete process.env.PORTCULLIS_TEST_CRASH_SECRET;
    await gw?.stop();
    for (const s of Object.values(servers)) await s.stop();
  });

  async function connect(connection: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport; sessionId: string }> {
    const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'crash-test', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport, sessionId: transport.sessionId! };
  }

  /** Calls `half`; returns the error the client got (it must get one). */
  async function callHalf(client: Client, args: Record<string, unknown> = {}): Promise<Error> {
    let error: Error | undefined;
    await client.callTool({ name: 'half', arguments: args }).then(
      () => assert.fail('the call was answered'),
      (err: Error) => (error = err),
    );
    return error!;
  }

  const events = (sessionId: string) => allEvents(gw.gateway.recorder!.store, sessionId);

  /** The id the server was sent the `half` call under (the gateway renumbers ids). */
  function serverIdOfHalf(recorded: EventRow[]): number {
    const call = deliveredTexts(recorded, 'toServer')
      .map((t) => JSON.parse(t) as { id?: number; method?: string; params?: { name?: string } })
      .find((m) => m.method === 'tools/call' && m.params?.name === 'half');
    assert.ok(call?.id !== undefined, 'the half call reached the server');
    return call.id;
  }

  async function sessionEnded(sessionId: string): Promise<string> {
    await waitFor(() => gw.gateway.sessions.get(sessionId) === undefined, 'the session to end');
    const store = gw.gateway.recorder!.store;
    await waitFor(async () => (await store.getSession(sessionId))?.status === 'closed', 'the recording to be sealed');
    return (await store.getSession(sessionId))!.closeReason ?? '';
  }

  /** The recording holds the partial bytes in one truncation event, and the client's error only as the gateway's. */
  async function assertRecorded(sessionId: string, partialOf: (serverId: number) => string, clientError: RegExp): Promise<EventRow> {
    const recorded = await events(sessionId);
    const serverId = serverIdOfHalf(recorded);
    const truncated = recorded.filter((e) => e.kind === 'truncated');
    assert.equal(truncated.length, 1, 'one truncation event');
    const details = JSON.parse(truncated[0]!.payload) as { partial?: string; bytes: number; reason: string };
    assert.equal(truncated[0]!.direction, 'toClient');
    assert.equal(details.partial, partialOf(serverId), 'the bytes that arrived, exactly');
    assert.equal(details.bytes, Buffer.byteLength(details.partial!));
    assert.match(describeEvent(truncated[0]!), /✂ cut off +server → gateway +\d+ bytes of an unfinished message/);

    // Nothing the server sent carries an error: the error the client got is the gateway's, recorded as delivered.
    const fromServer = receivedTexts(recorded, 'toClient').map((t) => JSON.parse(t) as { id?: unknown; error?: unknown });
    assert.ok(!fromServer.some((m) => m.error !== undefined), 'no error recorded as received from the server');
    const toClient = deliveredTexts(recorded, 'toClient').map((t) => JSON.parse(t) as { id?: unknown; error?: { message: string } });
    const error = toClient.find((m) => m.error !== undefined);
    assert.ok(error !== undefined, 'the error the client got is recorded as delivered');
    assert.match(error.error!.message, clientError);
    return truncated[0]!;
  }

  async function assertVerifies(sessionId: string): Promise<void> {
    const key = gw.gateway.recorder!.key;
    const result = await verifySession(gw.gateway.recorder!.store, sessionId, await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]));
    assert.deepEqual(result.problems, []);
  }

  it('stdio: half a message then exit; the partial line and a truncation event are recorded, the session ends', async () => {
    const { client, sessionId } = await connect('stdio');
    const error = await callHalf(client);
    assert.match(error.message, /exited with code 7/);
    assert.match(await sessionEnded(sessionId), /exited with code 7/);
    await assertRecorded(sessionId, (id) => halfOf(wholeAnswer(id)), /exited with code 7/);
    await assertVerifies(sessionId);
    await client.close();
  });

  it('stdio: an injected credential in the fragment is scrubbed like any other server text', async () => {
    const { client, sessionId } = await connect('injected');
    await callHalf(client);
    await sessionEnded(sessionId);
    const recorded = await events(sessionId);
    const truncated = recorded.find((e) => e.kind === 'truncated');
    assert.ok(truncated !== undefined, 'a truncation event');
    assert.match(truncated.payload, /the token is \[REDACTED:credential:injected\.env\.CRASHING_TOKEN\]/);
    assert.ok(!recorded.some((e) => e.payload.includes(injected)), 'the credential is nowhere in the recording');
    await client.close();
  });

  it('stdio with masking: the fragment is masked, and the value it broke off in is withheld', async () => {
    const { client, sessionId } = await connect('masked');
    await callHalf(client);
    await sessionEnded(sessionId);
    const recorded = await events(sessionId);
    const truncated = recorded.find((e) => e.kind === 'truncated');
    const details = JSON.parse(truncated!.payload) as { partial: string; bytes: number };
    const fragment = halfOf(wholeAnswer(serverIdOfHalf(recorded)));
    assert.ok(fragment.includes(plantedToken), 'the server did send the token before it died');
    assert.ok(!truncated!.payload.includes(plantedToken), 'the token is not in the recording');
    assert.match(details.partial, /REDACTED/);
    assert.ok(details.partial.startsWith('{"jsonrpc":"2.0","id":'));
    assert.match(details.partial, /"text":"\[withheld: the value the message broke off in, \d+ bytes\]$/);
    assert.ok(!details.partial.includes('xxx'), 'nothing of the cut value is kept');
    await client.close();
  });

  it('HTTP, JSON answer: half the body then the process exits; recorded, the client told, the session ends', async () => {
    const { client, sessionId } = await connect('json');
    const error = await callHalf(client);
    assert.match(error.message, /broke off after \d+ bytes, and the server is gone/);
    assert.match(await sessionEnded(sessionId), /gone/);
    await assertRecorded(sessionId, (id) => halfOf(wholeAnswer(id)), /broke off after \d+ bytes/);
    await assertVerifies(sessionId);
    await client.close();
  });

  it('HTTP, SSE answer: the stream is cut mid-event and the process exits; recorded, the client told, the session ends', async () => {
    const { client, sessionId } = await connect('sse');
    const error = await callHalf(client, { sse: true });
    assert.match(error.message, /stopped in the middle of its answer/);
    assert.match(await sessionEnded(sessionId), /gone/);
    await assertRecorded(sessionId, (id) => `event: message\ndata: ${halfOf(wholeAnswer(id))}`, /stopped in the middle of its answer/);
    await assertVerifies(sessionId);
    await client.close();
  });

  it('HTTP, the server dies between calls: the next call is told and the session ends, not each later call', async () => {
    const { client, sessionId } = await connect('idle');
    assert.deepEqual((await client.callTool({ name: 'echo', arguments: { text: 'hello' } })).content, [{ type: 'text', text: 'hello' }]);
    await servers.idle!.stop();
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'anyone?' } }), /Upstream server error: .*(ECONNREFUSED|refuses connections)/);
    assert.match(await sessionEnded(sessionId), /upstream session lost/);
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'again' } }), /Session not found|404/);
    await client.close();
  });

  for (const connection of ['masked', 'live']) {
    it(`${connection === 'live' ? 'HTTP' : 'stdio'}: an answer nested 10,000 levels deep is refused, its call gets the gateway's error, the session goes on`, async () => {
      const { client, transport, sessionId } = await connect(connection);
      await assert.rejects(
        client.callTool({ name: 'deep', arguments: {} }),
        /answer was refused: the message nests arrays and objects more than 512 levels deep/,
      );
      const after = await client.callTool({ name: 'echo', arguments: { text: 'still here' } });
      assert.deepEqual(after.content, [{ type: 'text', text: 'still here' }]);
      assert.ok(gw.gateway.sessions.get(sessionId)?.isOpen, 'the session is still open');
      await transport.terminateSession();
      await client.close();
    });
  }

  it('HTTP, the connection breaks but the server lives: the call fails and is recorded, the session goes on', async () => {
    const { client, transport, sessionId } = await connect('live');
    const error = await callHalf(client, { live: true });
    assert.match(error.message, /broke off after \d+ bytes/);
    assert.doesNotMatch(error.message, /gone/);
    const after = await client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    assert.deepEqual(after.content, [{ type: 'text', text: 'still here' }]);
    assert.ok(gw.gateway.sessions.get(sessionId)?.isOpen, 'the session is still open');
    await assertRecorded(sessionId, (id) => halfOf(wholeAnswer(id)), /broke off after \d+ bytes/);
    await transport.terminateSession();
    await client.close();
  });
});
