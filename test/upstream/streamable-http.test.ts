import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { resolveSecretString } from '../../src/core/secrets.js';
import type { JsonRpcMessage } from '../../src/protocol/jsonrpc.js';
import { UpstreamAgents } from '../../src/upstream/http-agents.js';
import { StreamableHttpUpstream } from '../../src/upstream/streamable-http.js';
import { UpstreamError } from '../../src/upstream/upstream.js';
import { noCredentials } from '../../src/scrub/credential-scrubber.js';

/**
 * The gateway's own Streamable HTTP client against a scripted server that does what real servers do:
 * JSON or SSE answers, streams that drop before the response, lost sessions, redirects.
 */

/** Sends a message as the session does: with its JSON text. */
function sendTo(upstream: StreamableHttpUpstream, message: JsonRpcMessage): Promise<void> {
  return upstream.send(message, JSON.stringify(message));
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('Streamable HTTP upstream', () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_req, _body, res) => res.writeHead(500).end();
  const seen: Array<{ method: string; headers: IncomingMessage['headers']; body: string }> = [];
  const agents = new UpstreamAgents();

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, headers: req.headers, body });
        if (req.method === 'DELETE') res.writeHead(200).end();
        else handler(req, body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    agents.destroy();
    server.closeAllConnections();
    server.close();
  });

  function link(path = '/mcp', maxBytes = 1 << 20) {
    seen.length = 0;
    const upstream = new StreamableHttpUpstream(
      { kind: 'http', url: resolveSecretString(`${base}${path}`), headers: { 'X-Api-Key': resolveSecretString('configured') } },
      agents.for('test', false),
      maxBytes,
      noCredentials,
    );
    const received: JsonRpcMessage[] = [];
    upstream.onmessage = (m) => received.push(m);
    return { upstream, received };
  }

  const until = async (check: () => boolean, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('sends configured headers, learns the session id, then sends it and the protocol version', async () => {
    handler = (req, body, res) => {
      const m = JSON.parse(body) as { id?: number; method: string };
      if (m.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'S1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-11-25' } }));
      } else if (m.id === undefined) res.writeHead(202).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
    };
    const { upstream, received } = link();
    await upstream.start();
    await sendTo(upstream, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    upstream.setProtocolVersion('2025-11-25');
    await sendTo(upstream, { jsonrpc: '2.0', id: 2, method: 'ping' });
    assert.deepEqual(
      received.map((m) => ('id' in m ? m.id : null)),
      [1, 2],
    );
    assert.equal(seen[0]!.headers['x-api-key'], 'configured');
    assert.equal(seen[0]!.headers['mcp-session-id'], undefined);
    assert.equal(seen[1]!.headers['mcp-session-id'], 'S1');
    assert.equal(seen[1]!.headers['mcp-protocol-version'], '2025-11-25');
    await upstream.close();
    assert.equal(seen.at(-1)!.method, 'DELETE', 'close ends the upstream session');
    assert.equal(seen.at(-1)!.headers['mcp-session-id'], 'S1');
  });

  it('resumes a POST stream that drops before its response, with Last-Event-ID', async () => {
    handler = (req, body, res) => {
      if (req.method === 'POST') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('id: s1_0\ndata: \n\n');
        res.write(`id: s1_1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1, progressToken: 't' } })}\n\n`);
        res.end(); // the server closes the stream early (SSE polling)
      } else if (req.method === 'GET' && req.headers['last-event-id'] === 's1_1') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`id: s1_2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 7, result: { done: true } })}\n\n`);
      } else res.writeHead(405).end();
    };
    const { upstream, received } = link();
    await sendTo(upstream, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow' } });
    await until(() => received.some((m) => 'id' in m && m.id === 7));
    assert.deepEqual(
      received.map((m) => ('method' in m ? m.method : `response:${String((m as { id: number }).id)}`)),
      ['notifications/progress', 'response:7'],
    );
    assert.equal((received[1] as { result?: unknown }).result !== undefined, true);
    await upstream.close();
  });

  it('answers a request with an error when its stream ends unanswered and cannot be resumed', async () => {
    handler = (req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x' } })}\n\n`);
    };
    const { upstream, received } = link();
    await sendTo(upstream, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: {} });
    await until(() => received.length === 2);
    const error = received[1] as { id: number; error: { code: number; message: string } };
    assert.equal(error.id, 9);
    assert.equal(error.error.code, -31000);
    assert.match(error.error.message, /closed its response stream before answering/);
    await upstream.close();
  });

  it('reports a lost session for 404, and for 400 that names the session; not for other 400s', async () => {
    let status = 200;
    let text = '';
    handler = (req, body, res) => {
      const m = JSON.parse(body) as { id?: number; method: string };
      if (m.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'S2' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
    };
    const { upstream } = link();
    await sendTo(upstream, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    for (const [s, t, lost] of [
      [404, 'Session not found', true],
      [400, 'Bad Request: No valid session ID provided', true],
      [400, 'Bad Request: params.name is required', false],
      [500, 'boom', false],
    ] as const) {
      status = s;
      text = t;
      await assert.rejects(sendTo(upstream, { jsonrpc: '2.0', id: 2, method: 'ping' }), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.status, s);
        assert.equal(err.sessionLost, lost, `${s} ${t}`);
        assert.match(err.message, new RegExp(`HTTP ${s}`));
        return true;
      });
    }
    await upstream.close();
  });

  it('never follows a redirect', async () => {
    handler = (req, _body, res) => {
      if (req.url === '/mcp') res.writeHead(307, { location: `${base}/elsewhere` }).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    };
    const { upstream } = link();
    await assert.rejects(sendTo(upstream, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }), /HTTP 307 \(redirects are not followed\)/);
    assert.ok(!seen.some((s) => s.method === 'POST' && s.body && s.headers.host && s !== seen[0]), 'only one POST was made');
    assert.equal(seen.length, 1);
    await upstream.close();
  });

  it('refuses a response larger than the message size limit', async () => {
    handler = (_req, body, res) => {
      const m = JSON.parse(body) as { id: number };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { big: 'x'.repeat(5000) } }));
    };
    const { upstream } = link('/mcp', 1024);
    await assert.rejects(sendTo(upstream, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }), /larger than 1024 bytes/);
    await upstream.close();
  });

  it('opens the standalone GET stream before sending what follows initialized, so a server request on it is not lost', async () => {
    let getAnsweredAt = 0;
    const postsAt: Array<{ method: string; at: number }> = [];
    handler = (req, body, res) => {
      if (req.method === 'GET') {
        // A slow stream open: the server only sends on it once it is connected.
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', method: 'elicitation/create', params: {} })}\n\n`);
          getAnsweredAt = performance.now();
        }, 200);
        return;
      }
      const m = JSON.parse(body) as { id?: number; method: string };
      postsAt.push({ method: m.method, at: performance.now() });
      if (m.id === undefined) return void res.writeHead(202).end();
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'S-get' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
    };
    const { upstream, received } = link();
    await sendTo(upstream, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    await sendTo(upstream, { jsonrpc: '2.0', method: 'notifications/initialized' });
    await sendTo(upstream, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'asks-the-user' } });
    const call = postsAt.find((p) => p.method === 'tools/call');
    assert.ok(call && getAnsweredAt > 0 && call.at >= getAnsweredAt, 'the call went out after the GET stream was open');
    await until(() => received.some((m) => 'id' in m && m.id === 'srv-1'));
    await upstream.close();
  });

  it('keeps serving calls while hundreds of sessions hold their standalone GET streams open', { timeout: 30_000 }, async () => {
    const streams: ServerResponse[] = [];
    handler = (req, body, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
        streams.push(res);
        return;
      }
      const m = JSON.parse(body) as { id?: number; method: string };
      if (m.id === undefined) return void res.writeHead(202).end();
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `S${m.id}` }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
    };
    const sessions = 300;
    const links = Array.from({ length: sessions }, () => link());
    await Promise.all(
      links.map(async ({ upstream }, i) => {
        await sendTo(upstream, { jsonrpc: '2.0', id: i, method: 'initialize', params: {} });
        await sendTo(upstream, { jsonrpc: '2.0', method: 'notifications/initialized' });
      }),
    );
    await until(() => streams.length === sessions);
    // Every session's GET stream holds a socket; a call on any session still goes through.
    const last = links[sessions - 1]!;
    await sendTo(last.upstream, { jsonrpc: '2.0', id: 'after', method: 'ping' });
    await until(() => last.received.some((m) => 'id' in m && m.id === 'after'));
    for (const res of streams) res.end();
    await Promise.all(links.map(({ upstream }) => upstream.close()));
  });

  it('says so when the server cannot be reached', async () => {
    const upstream = new StreamableHttpUpstream(
      { kind: 'http', url: resolveSecretString('http://127.0.0.1:9/mcp'), headers: {} },
      agents.for('x', false),
      1024,
      noCredentials,
    );
    await assert.rejects(sendTo(upstream, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }), /cannot be reached \(ECONNREFUSED\)/);
  });
});
