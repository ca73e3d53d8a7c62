import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpError, CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { DevIdentity } from '../../src/identity/dev-identity.js';
import { openStore } from '../../src/store/open.js';
import { describeEvent } from '../../src/recording/transcript.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';
import { callApi } from '../helpers/api.js';

/**
 * Guardrails with a real server (`server-filesystem` over stdio): writes held until a second person approves
 * them, denials on an argument pattern, timeouts, and the rules an approval obeys (never the caller's own,
 * single-use, bound to one call).
 */

const fsEntry = resolve(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');

interface ReviewView {
  id: string;
  status: string;
  rule: string;
  target: string | null;
  params: { name: string; arguments: Record<string, unknown> };
  requester: { subject: string };
  approvals: Array<{ subject: string }>;
  note: string | null;
}

const users = { alice: ['eng'], bob: ['sre-leads'], carol: ['sre-leads', 'eng'], dave: ['sre-leads'] };

function guardedConfig(root: string, dataDir?: string): Record<string, unknown> {
  return {
    ...(dataDir ? { dataDir } : {}),
    identity: { dev: { users } },
    rules: [
      {
        name: 'no-dotenv',
        when: 'tool.name == "read_text_file" && arguments.path.matches("\\\\.env$")',
        action: 'deny',
        message: 'environment files stay on the server',
      },
      {
        name: 'quick-review',
        when: 'tool.name == "write_file" && arguments.path.endsWith(".quick")',
        action: 'review',
        approvers: ['sre-leads'],
        timeout: '1s',
      },
      { name: 'writes-need-review', when: 'tool.name in ["write_file", "move_file"]', action: 'review', approvers: ['sre-leads'] },
    ],
    connections: { files: { stdio: { command: process.execPath, args: [fsEntry, root] }, access: { groups: ['eng'] } } },
  };
}

describe('guardrails with server-filesystem', () => {
  let gw: TestGateway;
  let root: string;
  const tokens: Record<string, string> = {};
  const clients: Client[] = [];

  const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

  async function connect(user: string): Promise<Client> {
    const client = new Client({ name: `guard-${user}`, version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('files'), { requestInit: { headers: { authorization: `Bearer ${tokens[user]}` } } }));
    clients.push(client);
    return client;
  }

  const api = (user: string, method: 'GET' | 'POST', path: string, body?: unknown) =>
    callApi<{ review?: ReviewView; reviews?: ReviewView[]; error?: string }>(gw.url, tokens[user]!, method, path, body);

  /** The pending review of a call to `path`, once it shows up for an approver. */
  async function pendingFor(path: string): Promise<ReviewView> {
    let found: ReviewView | undefined;
    await waitFor(async () => {
      const r = await api('bob', 'GET', '/api/reviews?status=pending');
      found = r.body.reviews?.find((v) => v.params.arguments.path === path);
      return found !== undefined;
    }, `a pending review of ${path}`);
    return found!;
  }

  before(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-guard-')));
    writeFileSync(join(root, '.env'), 'API_KEY=never-leaves\n');
    writeFileSync(join(root, 'notes.txt'), 'plain notes\n');
    gw = await startTestGateway(guardedConfig(root), { reviewPollMs: 100 });
    for (const user of Object.keys(users)) tokens[user] = await gw.tokenFor(user);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await gw?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('lets through what no rule holds', async () => {
    const alice = await connect('alice');
    assert.match(text(await alice.callTool({ name: 'read_text_file', arguments: { path: join(root, 'notes.txt') } })), /plain notes/);
  });

  it('denies a call whose arguments match a deny rule, with the rule and its message', async () => {
    const alice = await connect('alice');
    await assert.rejects(alice.callTool({ name: 'read_text_file', arguments: { path: join(root, '.env') } }), (err: McpError) =>
      /Denied by rule 'no-dotenv': environment files stay on the server/.test(err.message),
    );
  });

  it('holds a write until a second person approves it, then completes the same call', async () => {
    const alice = await connect('alice');
    const target = join(root, 'approved.txt');
    const call = alice.callTool({ name: 'write_file', arguments: { path: target, content: 'approved content' } }, undefined, { timeout: 30_000 });
    call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const review = await pendingFor(target);
    assert.equal(review.rule, 'writes-need-review');
    assert.equal(review.target, 'write_file');
    assert.equal(review.requester.subject, 'alice');
    assert.deepEqual(review.params.arguments, { path: target, content: 'approved content' }, 'approvers see the full arguments');
    assert.equal(existsSync(target), false, 'nothing reaches the server while the call is held');
    const approved = await api('bob', 'POST', `/api/reviews/${review.id}/approve`, { note: 'looks fine' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const result = await call;
    assert.notEqual(result.isError, true, text(result));
    assert.equal(readFileSync(target, 'utf8'), 'approved content');
    await waitFor(async () => (await api('alice', 'GET', `/api/reviews/${review.id}`)).body.review?.status === 'released', 'the review to be released');
  });

  it('holds a move_file the same way, and moves the file once approved', async () => {
    const alice = await connect('alice');
    const from = join(root, 'to-move.txt');
    const to = join(root, 'moved.txt');
    writeFileSync(from, 'moving');
    const call = alice.callTool({ name: 'move_file', arguments: { source: from, destination: to } }, undefined, { timeout: 30_000 });
    let review: ReviewView | undefined;
    await waitFor(async () => {
      review = (await api('bob', 'GET', '/api/reviews?status=pending')).body.reviews?.find((v) => v.target === 'move_file');
      return review !== undefined;
    }, 'the move to be held');
    assert.deepEqual(review!.params.arguments, { source: from, destination: to });
    assert.equal(existsSync(to), false);
    assert.equal((await api('bob', 'POST', `/api/reviews/${review!.id}/approve`, {})).status, 200);
    await call;
    assert.equal(readFileSync(to, 'utf8'), 'moving');
    assert.equal(existsSync(from), false);
  });

  it('refuses the caller approving their own call, and anyone outside the approver groups', async () => {
    const carol = await connect('carol');
    const target = join(root, 'self.txt');
    const call = carol.callTool({ name: 'write_file', arguments: { path: target, content: 'x' } }, undefined, { timeout: 30_000 });
    call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const review = await pendingFor(target);
    const own = await api('carol', 'POST', `/api/reviews/${review.id}/approve`, {});
    assert.equal(own.status, 403);
    assert.match(own.body.error!, /your own call/);
    const outsider = await api('alice', 'POST', `/api/reviews/${review.id}/approve`, {});
    assert.equal(outsider.status, 404, 'someone who is neither approver nor caller does not see it at all');
    const rejected = await api('bob', 'POST', `/api/reviews/${review.id}/reject`, { reason: 'not during the freeze' });
    assert.equal(rejected.status, 200);
    await assert.rejects(call, (err: McpError) => /Rejected by bob.*: not during the freeze/.test(err.message));
    assert.equal(existsSync(target), false);
  });

  it('an approval is single-use and releases only the call it was made for', async () => {
    const alice = await connect('alice');
    const first = join(root, 'first.txt');
    const second = join(root, 'second.txt');
    const one = alice.callTool({ name: 'write_file', arguments: { path: first, content: 'one' } }, undefined, { timeout: 30_000 });
    one.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const two = alice.callTool({ name: 'write_file', arguments: { path: second, content: 'two' } }, undefined, { timeout: 30_000 });
    two.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const reviewOne = await pendingFor(first);
    const reviewTwo = await pendingFor(second);
    assert.notEqual(reviewOne.id, reviewTwo.id);
    assert.equal((await api('bob', 'POST', `/api/reviews/${reviewOne.id}/approve`, {})).status, 200);
    await one;
    assert.equal(readFileSync(first, 'utf8'), 'one');
    assert.equal(existsSync(second), false, 'approving one call released no other');
    assert.equal((await api('bob', 'GET', `/api/reviews/${reviewTwo.id}`)).body.review!.status, 'pending');
    const replay = await api('dave', 'POST', `/api/reviews/${reviewOne.id}/approve`, {});
    assert.equal(replay.status, 409, 'a decided review takes no more approvals');
    assert.match(replay.body.error!, /already released/);
    assert.equal((await api('bob', 'POST', `/api/reviews/${reviewTwo.id}/reject`, { reason: 'one is enough' })).status, 200);
    await assert.rejects(two, /one is enough/);
    // The same call again is a new review: the spent approval does not carry over.
    const again = alice.callTool({ name: 'write_file', arguments: { path: first, content: 'one' } }, undefined, { timeout: 30_000 });
    again.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const reviewAgain = await pendingFor(first);
    assert.notEqual(reviewAgain.id, reviewOne.id);
    await api('bob', 'POST', `/api/reviews/${reviewAgain.id}/reject`, { reason: 'done already' });
    await assert.rejects(again, /done already/);
  });

  it('rejects a call nobody decides within the timeout', async () => {
    const alice = await connect('alice');
    const target = join(root, 'late.quick');
    await assert.rejects(
      alice.callTool({ name: 'write_file', arguments: { path: target, content: 'x' } }, undefined, { timeout: 30_000 }),
      /No approver decided/,
    );
    const [review] = (await api('bob', 'GET', '/api/reviews?status=expired')).body.reviews!.filter((r) => r.params.arguments.path === target);
    assert.ok(review, 'the review is kept, expired');
    assert.equal(existsSync(target), false);
  });

  it('tells a client that asked for progress that its call waits, and why', async () => {
    const alice = await connect('alice');
    const target = join(root, 'progress.txt');
    const progress: string[] = [];
    const call = alice.callTool({ name: 'write_file', arguments: { path: target, content: 'p' } }, undefined, {
      timeout: 30_000,
      onprogress: (p) => progress.push(p.message ?? ''),
    });
    const review = await pendingFor(target);
    await waitFor(() => progress.length > 0, 'a progress notification');
    assert.match(progress[0]!, new RegExp(`Waiting: held for review ${review.id} by rule 'writes-need-review'.*sre-leads`));
    await api('bob', 'POST', `/api/reviews/${review.id}/approve`, {});
    await call;
    assert.equal(readFileSync(target, 'utf8'), 'p');
  });

  it('a cancelled call cancels its review', async () => {
    const alice = await connect('alice');
    const target = join(root, 'cancelled.txt');
    const controller = new AbortController();
    const call = alice.callTool({ name: 'write_file', arguments: { path: target, content: 'c' } }, undefined, { timeout: 30_000, signal: controller.signal });
    call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const review = await pendingFor(target);
    controller.abort('changed my mind');
    await assert.rejects(call);
    await waitFor(async () => (await api('bob', 'GET', `/api/reviews/${review.id}`)).body.review?.status === 'cancelled', 'the review to be cancelled');
    assert.equal((await api('bob', 'POST', `/api/reviews/${review.id}/approve`, {})).status, 409);
    assert.equal(existsSync(target), false);
  });

  it('records every verdict: the rule, the hold, who approved and how long it waited', async () => {
    const store = gw.gateway.recorder!.store;
    const sessions = await store.listSessions({ limit: 100 });
    const verdicts = [];
    for (const s of sessions)
      for (const e of await allEvents(store, s.id))
        if (e.kind === 'verdict') verdicts.push(JSON.parse(e.payload) as { stage: string; action: string; reason?: string; details?: Record<string, unknown> });
    const guard = verdicts.filter((v) => v.stage === 'guard');
    const shown: string[] = [];
    for (const s of sessions) for (const e of await allEvents(store, s.id)) if (e.kind === 'verdict') shown.push(describeEvent(e, 400));
    assert.ok(
      shown.some((l) =>
        /⚑ guard pass tools\/call #\d+ \[rule writes-need-review; review rv_\S+; approved by bob@dev\.portcullis\.local; waited \d+ ms\]/.test(l),
      ),
      `sessions show marks the approval: ${shown.join('\n')}`,
    );
    assert.ok(guard.some((v) => v.action === 'answer' && v.details?.rule === 'no-dotenv' && v.details.action === 'deny'));
    assert.ok(guard.some((v) => v.action === 'hold' && /held for review rv_/.test(v.reason ?? '')));
    const approved = guard.find((v) => v.action === 'pass' && v.details?.action === 'approved');
    assert.ok(approved, 'an approval is recorded');
    assert.deepEqual(approved.details!.approvers, ['bob@dev.portcullis.local']);
    assert.equal(typeof approved.details!.waitedMs, 'number');
    assert.ok(guard.some((v) => v.action === 'answer' && v.details?.rejectedBy === 'bob@dev.portcullis.local'));
  });
});

describe('a pending review across a gateway restart', () => {
  it('fails the held call cleanly and marks the review interrupted', async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-guard-restart-')));
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-guard-data-'));
    try {
      let gw = await startTestGateway(guardedConfig(root, dataDir), { reviewPollMs: 100 });
      const client = new Client({ name: 'restart', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(gw.mcp('files'), { requestInit: { headers: { authorization: `Bearer ${await gw.tokenFor('alice')}` } } }),
      );
      const target = join(root, 'restart.txt');
      const call = client.callTool({ name: 'write_file', arguments: { path: target, content: 'r' } }, undefined, { timeout: 30_000 });
      call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
      const store = () => gw.gateway.recorder!.store;
      await waitFor(async () => (await store().listReviews({ status: 'pending', limit: 10 })).length === 1, 'the call to be held');
      const settled = call.then(
        () => 'completed',
        (err: Error) => err.message,
      );
      await gw.stop();
      assert.match(await settled, /shut down while the call was held/);
      await client.close().catch(() => {});
      gw = await startTestGateway(guardedConfig(root, dataDir));
      try {
        const [review] = await store().listReviews({ limit: 10 });
        assert.equal(review!.status, 'interrupted');
        assert.match(review!.decisionNote!, /shut down/);
        assert.equal(existsSync(target), false);
      } finally {
        await gw.stop();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a held call without a progress token', () => {
  it('gets an SSE response with keep-alive comments while it waits', async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-guard-sse-')));
    const gw = await startTestGateway({ ...guardedConfig(root), http: { keepAlive: '200ms' } }, { reviewPollMs: 100 });
    try {
      const auth = { authorization: `Bearer ${await gw.tokenFor('alice')}` };
      const endpoint = gw.mcp('files');
      const session = await rawInitialize(endpoint, auth);
      const headers = { ...mcpHeaders, ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
      await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
      const target = join(root, 'kept-alive.txt');
      const res = await fetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'write_file', arguments: { path: target, content: 'k' } } }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = res.body!.getReader();
      let seen = '';
      const decoder = new TextDecoder();
      while (!seen.includes(': keep-alive')) {
        const { value, done } = await reader.read();
        assert.equal(done, false, 'the stream stays open while the call is held');
        seen += decoder.decode(value);
      }
      const [review] = await gw.gateway.recorder!.store.listReviews({ status: 'pending', limit: 10 });
      const bob = `Bearer ${await gw.tokenFor('bob')}`;
      await fetch(new URL(`/api/reviews/${review!.id}/approve`, gw.url), {
        method: 'POST',
        headers: { authorization: bob, 'content-type': 'application/json' },
        body: '{}',
      });
      while (!seen.includes('"id":7')) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += decoder.decode(value);
      }
      assert.match(seen, /"result":\{"content":\[\{"type":"text","text":"Successfully wrote[^\n]*"id":7\}/, `the result comes on the same stream: ${seen}`);
      assert.equal(readFileSync(target, 'utf8'), 'k');
    } finally {
      await gw.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a pending review when the gateway is killed', () => {
  it('is marked interrupted at the next start, and the call never reaches the server', async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'portcullis-guard-kill-')));
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-guard-kill-data-'));
    const port = await freePort();
    const configFile = join(dataDir, 'gateway.yaml');
    writeFileSync(configFile, stringify({ ...guardedConfig(root, dataDir), listen: `127.0.0.1:${port}`, log: { level: 'warn' } }));
    const { token } = await (await DevIdentity.load(dataDir, { users, allowNonLoopback: false, tokenLifetimeMs: 3_600_000 })).mint('alice');
    try {
      const first = new GatewayProcess(configFile);
      await first.ready();
      const client = new Client({ name: 'killed', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/files`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
      );
      const target = join(root, 'killed.txt');
      const call = client.callTool({ name: 'write_file', arguments: { path: target, content: 'x' } }, undefined, { timeout: 30_000 });
      call.catch(() => {}); // settled below; marked handled so an early rejection is not reported as unhandled
      const store = await openStore(`sqlite:${join(dataDir, 'portcullis.db')}`);
      try {
        await waitFor(async () => (await store.listReviews({ status: 'pending', limit: 10 })).length === 1, 'the call to be held');
      } finally {
        await store.close();
      }
      await first.stop('SIGKILL');
      await assert.rejects(call, 'the client learns its call failed');
      await client.close().catch(() => {});
      const second = new GatewayProcess(configFile);
      await second.ready();
      await second.stop('SIGTERM');
      const after = await openStore(`sqlite:${join(dataDir, 'portcullis.db')}`);
      try {
        const [review] = await after.listReviews({ limit: 10 });
        assert.equal(review!.status, 'interrupted');
        assert.match(review!.decisionNote!, /restarted while the call was held/);
      } finally {
        await after.close();
      }
      assert.equal(existsSync(target), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
