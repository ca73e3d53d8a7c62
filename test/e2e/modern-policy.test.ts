import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/open.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, modernBody, modernHeaders, type RawAnswer, rawRequest } from '../helpers/modern.js';
import { allEvents, receivedTexts } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';
import { callApi } from '../helpers/api.js';

/**
 * Policy and security in the modern era: access, tool filters, guardrails and masking apply to 2026-07-28 clients as
 * to 2025-era ones; results filtered per caller are never for a shared cache; MRTR request states are bound to the
 * caller and the request; a header cannot smuggle a denied call past the gateway.
 */

const plantedToken = `ghp_${'k3Y'.repeat(12)}`;
const elicitCaps = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    rules: [{ name: 'no-forbidden-echo', when: 'tool.name == "echo" && arguments.message.contains("forbidden")', action: 'deny', message: 'not that word' }],
    connections: {
      ev: { stdio: everythingStdio(), access: { groups: ['testers'] }, tools: { deny: ['get-env'], pin: false } },
      open: { stdio: everythingStdio(), masking: { enabled: false } },
    },
    ...extra,
  };
}

async function post(
  gw: TestGateway,
  connection: string,
  token: string,
  method: string,
  params: Record<string, unknown>,
  name?: string,
  id = 1,
): Promise<RawAnswer> {
  return rawRequest(
    gw.mcp(connection),
    'POST',
    [...modernHeaders(method, name), ['authorization', `Bearer ${token}`]],
    JSON.stringify(modernBody(method, params, id)),
  );
}

/** Starts trigger-elicitation-request and returns the MRTR round it opens. */
async function openRound(gw: TestGateway, token: string): Promise<{ key: string; requestState: string }> {
  const answer = await post(
    gw,
    'ev',
    token,
    'tools/call',
    { name: 'trigger-elicitation-request', arguments: {}, _meta: elicitCaps },
    'trigger-elicitation-request',
  );
  assert.equal(answer.status, 200, answer.body);
  assert.ok(answer.json?.result, answer.body);
  const result = answer.json!.result as { resultType: string; inputRequests: Record<string, { method: string }>; requestState: string };
  assert.equal(result.resultType, 'input_required');
  const [key, request] = Object.entries(result.inputRequests)[0]!;
  assert.equal(request.method, 'elicitation/create');
  return { key, requestState: result.requestState };
}

function retry(gw: TestGateway, token: string, round: { key: string; requestState: string }, args: Record<string, unknown> = {}): Promise<RawAnswer> {
  return post(
    gw,
    'ev',
    token,
    'tools/call',
    {
      name: 'trigger-elicitation-request',
      arguments: args,
      inputResponses: { [round.key]: { action: 'accept', content: { name: 'Ada Lovelace' } } },
      requestState: round.requestState,
      _meta: elicitCaps,
    },
    'trigger-elicitation-request',
    2,
  );
}

describe('policy in the modern era', () => {
  let gw: TestGateway;
  let tester: string;
  let other: string;
  let outsider: string;

  before(async () => {
    gw = await startTestGateway(config());
    tester = gw.token;
    other = await gw.tokenFor('other');
    outsider = await gw.tokenFor('outsider');
  });
  after(async () => gw?.stop());

  it('refuses a caller without access with 403, and records the refused request', async () => {
    const answer = await post(gw, 'ev', outsider, 'tools/call', { name: 'echo', arguments: { message: 'outsider-marker' } }, 'echo');
    assert.equal(answer.status, 403);
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const rows = await store.listSessions({ connection: 'ev', subject: 'outsider', limit: 50 });
      assert.ok(rows.length >= 1);
      const texts = (await Promise.all(rows.map(async (r) => receivedTexts(await allEvents(store, r.id), 'toServer')))).flat();
      assert.ok(
        texts.some((t) => t.includes('outsider-marker')),
        'the refused request is kept',
      );
    } finally {
      await store.close();
    }
  });

  it('records a modern request refused for want of credentials, without the credential', async () => {
    const bogus = 'not-a-valid-token-4f1c9e';
    const answer = await post(gw, 'ev', bogus, 'tools/call', { name: 'echo', arguments: { message: 'unauthenticated-marker' } }, 'echo');
    assert.equal(answer.status, 401);
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const rows = await store.listSessions({ connection: 'ev', subject: '(unauthenticated)', limit: 50 });
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.edge, 'modern');
      const events = await allEvents(store, rows[0]!.id);
      assert.ok(receivedTexts(events, 'toServer').some((t) => t.includes('unauthenticated-marker')));
      assert.ok(!JSON.stringify(events).includes(bogus), 'the presented token is not recorded');
    } finally {
      await store.close();
    }
  });

  it('a v2 client pinned to 2026-07-28 sees a 403 as an authorization failure', async () => {
    await assert.rejects(connectV2(gw.mcp('ev'), { authorization: `Bearer ${outsider}` }, { pin: '2026-07-28' }), /403|Forbidden|insufficient/i);
  });

  it('filters denied tools from tools/list, and marks the filtered list private', async () => {
    const answer = await post(gw, 'ev', tester, 'tools/list', {});
    const result = answer.json!.result as { tools: Array<{ name: string }>; cacheScope: string; ttlMs: number };
    assert.ok(result.tools.some((t) => t.name === 'echo'));
    assert.ok(!result.tools.some((t) => t.name === 'get-env'), 'the denied tool is not listed');
    assert.equal(result.cacheScope, 'private');
    assert.ok(result.ttlMs >= 0 && result.ttlMs <= 60_000);
  });

  it('an unfiltered list of a connection without per-caller policy is public', async () => {
    const answer = await post(gw, 'open', tester, 'tools/list', {});
    const result = answer.json!.result as { tools: Array<{ name: string }>; cacheScope: string };
    assert.ok(result.tools.some((t) => t.name === 'get-env'));
    assert.equal(result.cacheScope, 'public');
  });

  it('refuses a call to a denied tool', async () => {
    const answer = await post(gw, 'ev', tester, 'tools/call', { name: 'get-env', arguments: {} }, 'get-env');
    assert.ok(answer.json?.error !== undefined || (answer.json?.result as { isError?: boolean })?.isError, answer.body);
    assert.doesNotMatch(answer.body, /PATH/, 'the environment is not shown');
  });

  it('refuses an Mcp-Name of an allowed tool on the body of a denied tool (header mismatch, before any policy)', async () => {
    const answer = await post(gw, 'ev', tester, 'tools/call', { name: 'get-env', arguments: {} }, 'echo');
    assert.equal(answer.status, 400);
    assert.equal(answer.json?.error?.code, -32020);
    assert.doesNotMatch(answer.body, /PATH/);
  });

  it('applies a guardrail deny', async () => {
    const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
    try {
      const allowed = await client.callTool({ name: 'echo', arguments: { message: 'fine' } });
      assert.deepEqual(allowed.content, [{ type: 'text', text: 'Echo: fine' }]);
      const denied = await client.callTool({ name: 'echo', arguments: { message: 'a forbidden word' } }).then(
        (r) => JSON.stringify(r),
        (err: Error) => err.message,
      );
      assert.match(denied, /not that word/);
      assert.doesNotMatch(denied, /Echo: a forbidden word/);
    } finally {
      await client.close();
    }
  });

  it('masks a credential in a result', async () => {
    const client = await connectV2(gw.mcp('ev'), gw.auth, { pin: '2026-07-28' });
    try {
      const result = JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: `token ${plantedToken}` } }));
      assert.doesNotMatch(result, new RegExp(plantedToken));
      assert.match(result, /Echo: token/);
    } finally {
      await client.close();
    }
  });

  describe('MRTR request states', () => {
    it('a round answered by its own caller completes the call', async () => {
      const round = await openRound(gw, tester);
      const answer = await retry(gw, tester, round);
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.json?.id, 2, 'the retry is answered under its own id');
      assert.match(JSON.stringify(answer.json?.result), /Ada Lovelace/);
      // The same state again: the round is over.
      const replayed = await retry(gw, tester, round);
      assert.equal(replayed.status, 400);
      assert.equal(replayed.json?.error?.code, -32602);
    });

    it("refuses another principal's requestState", async () => {
      const round = await openRound(gw, tester);
      const stolen = await retry(gw, other, round);
      assert.equal(stolen.status, 400);
      assert.equal(stolen.json?.error?.code, -32602);
      assert.match(stolen.json!.error!.message, /another principal/);
      // The rightful caller can still finish.
      assert.match(JSON.stringify((await retry(gw, tester, round)).json?.result), /Ada Lovelace/);
    });

    it('refuses a tampered requestState', async () => {
      const round = await openRound(gw, tester);
      const parts = round.requestState.split('.');
      const cipher = parts[3]!;
      const flipped = (cipher[0] === 'A' ? 'B' : 'A') + cipher.slice(1);
      const tampered = await retry(gw, tester, { key: round.key, requestState: [...parts.slice(0, 3), flipped, parts[4]].join('.') });
      assert.equal(tampered.status, 400);
      assert.match(tampered.json!.error!.message, /not issued by this gateway or was altered/);
      const garbage = await retry(gw, tester, { key: round.key, requestState: 'not-a-state' });
      assert.equal(garbage.status, 400);
      assert.match(JSON.stringify((await retry(gw, tester, round)).json?.result), /Ada Lovelace/);
    });

    it('refuses a requestState presented with another request', async () => {
      const round = await openRound(gw, tester);
      const other = await retry(gw, tester, round, { extra: 'changed' });
      assert.equal(other.status, 400);
      assert.match(other.json!.error!.message, /another request/);
      assert.match(JSON.stringify((await retry(gw, tester, round)).json?.result), /Ada Lovelace/);
    });
  });
});

describe('an MRTR round nobody answers', () => {
  it('expires: the call is cancelled upstream and a late retry is refused', async () => {
    const gw = await startTestGateway(config({ sessions: { inputTimeout: '500ms' } }));
    try {
      const round = await openRound(gw, gw.token);
      await waitFor(() => [...gw.gateway.sessions.all()].every((s) => s.pendingRequests === 0), 'the expired round cancels the call upstream');
      const late = await retry(gw, gw.token, round);
      assert.equal(late.status, 400);
      assert.match(late.json!.error!.message, /expired/);
    } finally {
      await gw.stop();
    }
  });
});

describe('a modern call held for review', () => {
  let gw: TestGateway;
  let approver: string;

  before(async () => {
    gw = await startTestGateway(
      {
        identity: { dev: { users: { tester: ['testers'], approver: ['approvers'] } } },
        reviews: { progressInterval: '1s' },
        rules: [{ name: 'review-echo', when: 'tool.name == "echo" && arguments.message.contains("needs-review")', action: 'review', approvers: ['approvers'] }],
        connections: { ev: { stdio: everythingStdio(), tools: { pin: false } } },
      },
      { reviewPollMs: 100 },
    );
    approver = await gw.tokenFor('approver');
  });
  after(async () => gw?.stop());

  const pending = async (): Promise<Array<{ id: string }>> =>
    (await callApi<{ reviews?: Array<{ id: string }> }>(gw.url, approver, 'GET', '/api/reviews?status=pending')).body.reviews ?? [];

  function send(message: string, id: number, progressToken: string, signal?: AbortSignal): Promise<Response> {
    return fetch(gw.mcp('ev'), {
      method: 'POST',
      headers: { ...Object.fromEntries(modernHeaders('tools/call', 'echo')), ...gw.auth },
      body: JSON.stringify(modernBody('tools/call', { name: 'echo', arguments: { message }, _meta: { progressToken } }, id)),
      ...(signal ? { signal } : {}),
    });
  }

  it('keeps the stream open, and the identical request of the same caller waits on the same review', async () => {
    const first = await send('needs-review one', 1, 'p1');
    assert.equal(first.headers.get('content-type'), 'text/event-stream', 'a held call answers with a stream');
    await waitFor(async () => (await pending()).length === 1, 'the call is held');
    const second = await send('needs-review one', 2, 'p2');
    assert.equal(second.headers.get('content-type'), 'text/event-stream');
    const reviews = await pending();
    assert.equal(reviews.length, 1, 'no second review for the identical request');
    const approved = await callApi(gw.url, approver, 'POST', `/api/reviews/${reviews[0]!.id}/approve`, { note: 'ok' });
    assert.equal(approved.status, 200);
    const [a, b] = await Promise.all([first.text(), second.text()]);
    assert.match(a, /"id":1,"result".*Echo: needs-review one/);
    assert.match(b, /"id":2,"result".*Echo: needs-review one/);
  });

  it('a client that closed the stream of a held call and sends it again gets its result', async () => {
    const abort = new AbortController();
    const first = await send('needs-review two', 3, 'p3', abort.signal);
    assert.equal(first.headers.get('content-type'), 'text/event-stream');
    await waitFor(async () => (await pending()).length === 1, 'the call is held');
    abort.abort();
    await first.text().catch(() => {});
    const again = await send('needs-review two', 4, 'p4');
    assert.equal(again.headers.get('content-type'), 'text/event-stream');
    const reviews = await pending();
    assert.equal(reviews.length, 1, 'the review was neither cancelled nor doubled');
    await callApi(gw.url, approver, 'POST', `/api/reviews/${reviews[0]!.id}/approve`, { note: 'ok' });
    assert.match(await again.text(), /"id":4,"result".*Echo: needs-review two/);
  });
});
