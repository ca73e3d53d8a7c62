import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';

/** /api/sessions: the recordings over HTTP, read only, for a bearer token (a person's, api.token, the local API key). */

async function makeSessions(gw: TestGateway, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = await rawInitialize(gw.mcp('everything'), gw.auth);
    const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    await (
      await fetch(gw.mcp('everything'), {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: `api ${i}` } } }),
      })
    ).text();
    await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': id } });
    ids.push(id);
  }
  return ids;
}

describe('/api/sessions', () => {
  let gw: TestGateway;
  let ids: string[];
  before(async () => {
    gw = await startTestGateway({ connections: { everything: { stdio: everythingStdio() } } });
    ids = await makeSessions(gw, 3);
  });
  after(() => gw?.stop());

  const get = async (path: string) => {
    const res = await fetch(new URL(path, gw.url), { headers: gw.apiAuth });
    const type = res.headers.get('content-type') ?? '';
    return {
      status: res.status,
      type,
      body: type.includes('json') && !type.includes('ndjson') ? ((await res.json()) as Record<string, unknown>) : await res.text(),
    };
  };

  it('lists sessions newest first, with filters and a cursor for the next page', async () => {
    const all = await get('/api/sessions');
    assert.equal(all.status, 200);
    const sessions = (all.body as { sessions: Array<{ id: string }> }).sessions;
    assert.deepEqual(
      sessions.map((s) => s.id),
      [...ids].reverse(),
    );
    const first = (await get('/api/sessions?limit=2')).body as { sessions: Array<{ id: string }>; next: string };
    assert.deepEqual(
      first.sessions.map((s) => s.id),
      [ids[2], ids[1]],
    );
    const second = (await get(`/api/sessions?limit=2&cursor=${first.next}`)).body as { sessions: Array<{ id: string }>; next: string | null };
    assert.deepEqual(
      second.sessions.map((s) => s.id),
      [ids[0]],
    );
    assert.equal(second.next, null);
    assert.equal(((await get('/api/sessions?user=nobody')).body as { sessions: unknown[] }).sessions.length, 0);
    assert.equal(((await get('/api/sessions?status=closed&since=1h&connection=everything')).body as { sessions: unknown[] }).sessions.length, 3);
  });

  it('refuses bad parameters with 400 and what is expected', async () => {
    const limit = await get('/api/sessions?limit=0');
    assert.equal(limit.status, 400);
    assert.match((limit.body as { error: string }).error, /limit expects a whole number from 1 to 1000, found "0"/);
    assert.equal((await get('/api/sessions?status=gone')).status, 400);
    assert.equal((await get('/api/sessions?since=soon')).status, 400);
    assert.equal((await get('/api/sessions?cursor=!!')).status, 400);
  });

  it('gives one session, its events (paged), its verification and its export', async () => {
    const id = ids[0]!;
    const one = (await get(`/api/sessions/${id}`)).body as { session: { id: string; status: string } };
    assert.equal(one.session.id, id);
    assert.equal(one.session.status, 'closed');
    const events = (await get(`/api/sessions/${id}/events`)).body as {
      events: Array<{ seq: number; kind: string; rpc?: { tool?: string } }>;
      next: number | null;
    };
    assert.equal(events.events[0]!.kind, 'open');
    assert.ok(events.events.some((e) => e.rpc?.tool === 'echo'));
    assert.equal(events.next, null);
    const paged = (await get(`/api/sessions/${id}/events?after=2&limit=3`)).body as { events: Array<{ seq: number }>; next: number };
    assert.deepEqual(
      paged.events.map((e) => e.seq),
      [3, 4, 5],
    );
    assert.equal(paged.next, 5);
    const verify = (await get(`/api/sessions/${id}/verify`)).body as { status: string };
    assert.equal(verify.status, 'verified');
    const exported = await get(`/api/sessions/${id}/export`);
    assert.equal(exported.status, 200);
    assert.equal(exported.type, 'application/x-ndjson');
    const lines = String(exported.body).trim().split('\n');
    assert.equal((JSON.parse(lines[0]!) as { type: string }).type, 'session');
    assert.equal(lines.length, events.events.length + 1);
  });

  it('404 for an unknown session or resource, 405 for anything but GET', async () => {
    assert.equal((await get('/api/sessions/nope')).status, 404);
    assert.equal((await get('/api/sessions/nope/verify')).status, 404);
    assert.equal((await get(`/api/sessions/${ids[0]}/nothing`)).status, 404);
    assert.equal((await get('/api/nothing')).status, 404);
    const del = await fetch(new URL(`/api/sessions/${ids[0]}`, gw.url), { method: 'DELETE', headers: gw.apiAuth });
    assert.equal(del.status, 405);
    assert.match(((await del.json()) as { error: string }).error, /read only/);
  });

  it('a foreign Host is refused (DNS rebinding)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(new URL('/api/sessions', gw.url), { headers: { ...gw.apiAuth, host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
  });
});

describe('/api with api.token', () => {
  let gw: TestGateway;
  before(async () => {
    process.env.PORTCULLIS_TEST_API_TOKEN = 'api-token-5a1e-long-enough';
    gw = await startTestGateway({ api: { token: '${env:PORTCULLIS_TEST_API_TOKEN}' }, connections: { everything: { stdio: everythingStdio() } } });
  });
  after(async () => {
    delete process.env.PORTCULLIS_TEST_API_TOKEN;
    await gw?.stop();
  });

  it('needs the bearer token: 401 without it or with a wrong one, 200 with it', async () => {
    const url = new URL('/api/sessions', gw.url);
    const none = await fetch(url);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="portcullis-api"');
    assert.match(((await none.json()) as { error: string }).error, /needs a bearer token/);
    const wrong = await fetch(url, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    await wrong.text();
    const right = await fetch(url, { headers: { authorization: 'Bearer api-token-5a1e-long-enough' } });
    assert.equal(right.status, 200);
    await right.text();
    const local = await fetch(url, { headers: gw.apiAuth });
    assert.equal(local.status, 200, 'the local API key works beside api.token: the CLI on the host needs no copy of it');
    await local.text();
    assert.ok(!gw.log.text.includes('api-token-5a1e-long-enough'), 'the token never reaches the log');
  });
});

describe('/api with recording off', () => {
  it('answers 503 saying recording is off', async () => {
    const gw = await startTestGateway({ recording: { mode: 'off' }, connections: { everything: { stdio: everythingStdio() } } });
    try {
      const res = await fetch(new URL('/api/sessions', gw.url), { headers: gw.apiAuth });
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as { error: string }).error, /recording is off/);
      assert.ok(gw.log.lines.some((l) => /recording is OFF/.test(String(l.msg)) && Number(l.level) === 40));
    } finally {
      await gw.stop();
    }
  });
});
