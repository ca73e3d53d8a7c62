import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import WebSocket from 'ws';
import { secretHash } from '../../src/crypto/secrets.js';
import { defaultMaxConnections } from '../../src/edge/connection-guard.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Slowloris at the HTTP edge, with raw loopback sockets against a real gateway: sockets that send a request's
 * head or body a byte at a time, or nothing at all, are closed after their timeout (short here, so the test is
 * quick: they are config); over the connection cap idle sockets are shed so a real client gets through; and
 * long-lived responses (an SSE stream, a slow call) outlive every one of those timeouts.
 */

interface RawSocket {
  socket: Socket;
  /** Everything the gateway wrote back. */
  received: () => string;
  closed: () => boolean;
  /** Writes `text` one byte every `everyMs` until the socket closes or the text runs out (bounded by its length). */
  dribble(text: string, everyMs: number): void;
}

async function open(url: string): Promise<RawSocket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (received += d));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  let timer: NodeJS.Timeout | undefined;
  return {
    socket,
    received: () => received,
    closed: () => closed,
    dribble(text, everyMs) {
      let i = 0;
      timer = setInterval(() => {
        if (closed || i >= text.length) return clearInterval(timer);
        socket.write(text[i++]!);
      }, everyMs);
      socket.once('close', () => clearInterval(timer));
    },
  };
}

const longHead = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(400)}\r\n\r\n`;

describe('slow and idle clients', () => {
  let gw: TestGateway;
  const opened: RawSocket[] = [];

  before(async () => {
    gw = await startTestGateway({
      connections: { everything: { stdio: everythingStdio(), tools: { pin: false } } },
      http: { headersTimeout: '400ms', requestTimeout: '800ms', idleTimeout: '400ms', keepAlive: '200ms' },
    });
  });

  after(async () => {
    for (const s of opened) s.socket.destroy();
    await gw?.stop();
  });

  async function rawSocket(): Promise<RawSocket> {
    const s = await open(gw.url);
    opened.push(s);
    return s;
  }

  it('a head sent a byte at a time is answered 408 and closed after the header timeout', async () => {
    const s = await rawSocket();
    const started = Date.now();
    s.dribble(longHead, 20);
    await waitFor(s.closed, 'the header dribbler to be closed', 10_000);
    assert.match(s.received(), /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - started >= 400, 'not before the header timeout');
  });

  it('a body sent a byte at a time is answered 408 and closed after the request timeout', async () => {
    const s = await rawSocket();
    const { host } = new URL(gw.url);
    const head = `POST /mcp/everything HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${gw.auth.authorization}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n`;
    s.socket.write(head);
    s.dribble('{'.padEnd(1000, ' '), 20);
    await waitFor(s.closed, 'the body dribbler to be closed', 10_000);
    assert.match(s.received(), /^HTTP\/1\.1 408 /);
  });

  it('a socket that sends nothing is closed', async () => {
    const s = await rawSocket();
    await waitFor(s.closed, 'the silent socket to be closed', 10_000);
  });

  it('a keep-alive socket idle after its request is closed', async () => {
    const s = await rawSocket();
    s.socket.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(gw.url).host}\r\n\r\n`);
    await waitFor(() => s.received().includes('"ok"'), 'the health answer', 10_000);
    await waitFor(s.closed, 'the idle keep-alive socket to be closed', 10_000);
  });

  it('a long SSE stream and a slow call outlive every timeout', async () => {
    const endpoint = gw.mcp('everything');
    const sessionId = await rawInitialize(endpoint, gw.auth);
    const headers = { ...gw.auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    const controller = new AbortController();
    const stream = await fetch(endpoint, { headers: { ...headers, accept: 'text/event-stream' }, signal: controller.signal });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    let streamEnded = false;
    const reading = (async () => {
      for (;;) {
        const { done } = await reader.read().catch(() => ({ done: true }));
        if (done) return void (streamEnded = true);
      }
    })();

    // A call that takes 2.5 s (three times the request timeout, six times the others), answered on its POST.
    const transport = new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: gw.auth } });
    const client = new Client({ name: 'slow-call', version: '1.0.0' });
    await client.connect(transport);
    const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2.5, steps: 5 } }, undefined, {
      onprogress: () => {},
      timeout: 30_000,
    });
    assert.match(JSON.stringify(result.content), /Long running operation completed/);
    await transport.terminateSession();
    await client.close();

    assert.equal(streamEnded, false, 'the GET stream is still open after every timeout has passed');
    const ended = await fetch(endpoint, { method: 'DELETE', headers: { ...mcpHeaders, ...headers } });
    assert.equal(ended.status, 200);
    await reading;
    controller.abort();
  });
});

describe('an agent tunnel under short timeouts', () => {
  let gw: TestGateway;
  const token = 'pca_slow-clients-test-token-0123456789abcdef';

  before(async () => {
    gw = await startTestGateway({
      connections: { vpc: { agent: 'vpc-agent' } },
      agents: { heartbeat: '1s' },
      http: { headersTimeout: '300ms', requestTimeout: '300ms', idleTimeout: '300ms' },
    });
    await gw.gateway.recorder!.store.putAgent(
      { name: 'vpc-agent', tokenHash: secretHash(token), createdAtUs: Date.now() * 1000, revokedAtUs: null, lastSeenAtUs: null },
      false,
    );
  });

  after(async () => {
    await gw?.stop();
  });

  it('a WebSocket tunnel outlives the header, request and idle timeouts', async () => {
    const url = new URL('/agent', gw.url.replace(/^http/, 'ws'));
    const ws = new WebSocket(url, { headers: { 'x-portcullis-agent': 'vpc-agent', authorization: `Bearer ${token}` } });
    let closed = false;
    ws.on('close', () => (closed = true));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    // Ten times every timeout, with the gateway's heartbeat pings (answered by ws) as the only traffic.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(closed, false, 'the tunnel is still open');
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.close();
  });
});

describe('the connection cap', () => {
  let gw: TestGateway;
  const opened: RawSocket[] = [];
  const cap = 4;

  before(async () => {
    // Timeouts long enough that only the cap can close anything during the test.
    gw = await startTestGateway({
      connections: { everything: { stdio: everythingStdio(), tools: { pin: false } } },
      http: { headersTimeout: '120s', requestTimeout: '120s', idleTimeout: '120s', maxConnections: cap },
    });
  });

  after(async () => {
    for (const s of opened) s.socket.destroy();
    await gw?.stop();
  });

  async function rawSocket(): Promise<RawSocket> {
    const s = await open(gw.url);
    opened.push(s);
    return s;
  }

  it('idle attacker sockets at the cap are shed, oldest first, and a real client gets through', async () => {
    const attackers: RawSocket[] = [];
    for (let i = 0; i < cap; i++) attackers.push(await rawSocket());
    // One starts a head and never finishes it: still idle (no request in progress).
    attackers[1]!.socket.write('GET / HTTP/1.1\r\n');
    const res = await fetch(new URL('/healthz', gw.url));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    await waitFor(() => attackers[0]!.closed(), 'the oldest idle socket to be shed', 10_000);
    for (const s of attackers) s.socket.destroy();
  });

  it('when every connection is busy, a newcomer is refused with 503 and Retry-After', async () => {
    const { host } = new URL(gw.url);
    const busy: RawSocket[] = [];
    for (let i = 0; i < cap; i++) {
      const s = await rawSocket();
      // A legacy SSE stream: a request in progress for as long as it lasts. Its first event shows the gateway has it.
      s.socket.write(`GET /sse/everything HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${gw.auth.authorization}\r\nAccept: text/event-stream\r\n\r\n`);
      await waitFor(() => s.received().includes('event: endpoint'), `stream ${i} to open`, 15_000);
      busy.push(s);
    }
    const newcomer = await rawSocket();
    await waitFor(newcomer.closed, 'the newcomer to be refused', 10_000);
    assert.match(newcomer.received(), /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*retry-after: 5/i);
    assert.equal(busy.filter((s) => s.closed()).length, 0, 'no busy connection was shed');
    for (const s of busy) s.socket.destroy();
  });
});

describe('the default connection cap', () => {
  it('is half the open-file limit, bounded, and 512 when the limit cannot be read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-limits-'));
    try {
      const limits = (soft: string) => {
        const file = join(dir, soft);
        writeFileSync(
          file,
          `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 1048576              files\n`,
        );
        return file;
      };
      assert.equal(defaultMaxConnections(limits('256')), 128);
      assert.equal(defaultMaxConnections(limits('1048576')), 10_000);
      assert.equal(defaultMaxConnections(limits('unlimited')), 10_000);
      assert.equal(defaultMaxConnections(join(dir, 'missing')), 512);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
