import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveSecretString } from '../../src/core/secrets.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { Stage } from '../../src/pipeline/stage.js';
import { ErrorCode, type JsonRpcMessage, type JsonRpcResponse, type RequestId } from '../../src/protocol/jsonrpc.js';
import { Session } from '../../src/session/session.js';
import type { ClientSink } from '../../src/exchange/sink.js';
import { UpstreamAgents } from '../../src/upstream/http-agents.js';
import { StreamableHttpUpstream } from '../../src/upstream/streamable-http.js';
import { noCredentials } from '../../src/scrub/credential-scrubber.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Whatever fails inside the gateway while it handles a client request (here a stage with a defect: it throws on
 * one input), the request is answered with an error and its id is released: the client is not left waiting, the
 * id is not "in flight" forever, and the session goes on serving.
 */

/**
 * A stage with a defect on one input: it throws at once, or, after a pause, rewrites the call into something that
 * cannot be serialized (so the session fails after it has registered the request for the server).
 */
const faulty: Stage = {
  name: 'faulty',
  inspect(message: JsonRpcMessage) {
    const args = (message as { params?: { arguments?: { fault?: string } } }).params?.arguments;
    if (args?.fault === 'now') throw new RangeError('Maximum call stack size exceeded');
    if (args?.fault === 'later') {
      const rewritten = { ...message, params: { name: 'echo', arguments: { message: 'hi', size: 1n } } } as unknown as JsonRpcMessage;
      return Promise.resolve({ action: 'pass' as const, message: rewritten });
    }
    return undefined;
  },
};

class CollectingSink implements ClientSink {
  readonly sent: JsonRpcResponse[] = [];
  connected = true;
  send(message: JsonRpcMessage, _related: RequestId | undefined): void {
    if ('id' in message && !('method' in message)) this.sent.push(message as JsonRpcResponse);
  }
  abandon(): void {}
  close(): void {}
}

describe('a failure while handling a client message', () => {
  let echo: EchoServer;
  let agents: UpstreamAgents;
  let session: Session;
  const sink = new CollectingSink();

  before(async () => {
    echo = await startEchoServer();
    agents = new UpstreamAgents();
    session = new Session({
      id: 's1',
      connection: 'echo',
      identity: { subject: 'tester', issuer: 'test', groups: [] },
      upstream: new StreamableHttpUpstream(
        { kind: 'http', url: resolveSecretString(echo.url), headers: {} },
        agents.for('echo', false),
        1 << 20,
        noCredentials,
      ),
      pipeline: (onVerdict) => new Pipeline([faulty], onVerdict),
      log: pino({ level: 'silent' }),
    });
    session.attach(sink);
    await session.open();
    session.receive(
      { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } },
      '',
    );
    await waitFor(() => sink.sent.some((r) => r.id === 0), 'the initialize answer');
  });

  after(async () => {
    await session?.close('test over');
    agents?.destroy();
    await echo?.stop();
  });

  const call = (id: number, args: Record<string, unknown>) => ({
    jsonrpc: '2.0' as const,
    id,
    method: 'tools/call',
    params: { name: 'echo', arguments: { message: 'hi', ...args } },
  });

  for (const fault of ['now', 'later']) {
    it(`a defect ${fault === 'now' ? 'in a synchronous stage' : 'after an asynchronous stage'}: an internal error answers the request, and its id serves again`, async () => {
      const id = fault === 'now' ? 1 : 2;
      assert.doesNotThrow(() => session.receive(call(id, { fault }), JSON.stringify(call(id, { fault }))));
      await waitFor(() => sink.sent.some((r) => r.id === id), `the answer to request ${id}`);
      const error = sink.sent.find((r) => r.id === id)!;
      assert.equal(error.error?.code, ErrorCode.InternalError);
      assert.match(error.error!.message, /could not process this request/);
      assert.equal(session.pendingRequests, 0, 'nothing is left in flight');

      sink.sent.length = 0;
      session.receive(call(id, {}), JSON.stringify(call(id, {})));
      await waitFor(() => sink.sent.some((r) => r.id === id), `the second answer to request ${id}`);
      assert.deepEqual(sink.sent.find((r) => r.id === id)!.result, { content: [{ type: 'text', text: 'Echo: hi' }] });
      assert.equal(session.isOpen, true);
    });
  }
});
