import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AccessRequestRow } from '../../src/store/access-types.js';
import { runCli } from '../helpers/cli.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';
import { callApi } from '../helpers/api.js';

/**
 * Just-in-time access end to end: a user outside a connection's groups asks for it with the CLI, an approver
 * (never the requester) approves, the user gets in for the time granted, and when the grant runs out or is
 * revoked their sessions end and the door closes again. Every step is in the ledger.
 */

describe('just-in-time access', () => {
  let gw: TestGateway;
  const tokens: Record<string, string> = {};

  before(async () => {
    gw = await startTestGateway(
      {
        identity: { dev: { users: { alice: ['approvers'], bob: ['engineers'], eve: ['engineers'], carol: ['approvers'] } } },
        connections: {
          prod: { stdio: everythingStdio(), access: { groups: ['sre'], approvers: ['approvers'], maxGrant: '1h' } },
          lab: { stdio: everythingStdio(), access: { groups: ['sre'] } },
        },
      },
      { grantRefreshMs: 100 },
    );
    for (const user of ['alice', 'bob', 'eve', 'carol']) tokens[user] = await gw.tokenFor(user);
  });
  after(() => gw?.stop());

  const cli = (user: string, ...args: string[]) =>
    runCli(['access', ...args, '--gateway', gw.url], { env: { PORTCULLIS_TOKEN: tokens[user]!, PORTCULLIS_HOME: '/nonexistent' } });
  const api = (user: string, method: 'GET' | 'POST', path: string, body?: unknown) =>
    callApi<{ request?: AccessRequestRow; requests?: AccessRequestRow[]; error?: string }>(gw.url, tokens[user]!, method, path, body);
  const initialize = (user: string) =>
    fetch(gw.mcp('prod'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${tokens[user]}` },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: user, version: '1' } },
      }),
    });
  const ledgerAccess = async () =>
    (await gw.gateway.recorder!.store.ledger(gw.gateway.recorder!.instanceId, -1, 10_000))
      .filter((l) => l.kind === 'access')
      .map((l) => ({ id: l.sessionId, ...(JSON.parse(l.detail) as { event: string; by: { subject: string } | null }) }));
  const requestFor = async (user: string, duration: string) => {
    const r = await api(user, 'POST', '/api/access', { connection: 'prod', duration, reason: 'incident 4711' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.request!;
  };

  it('a request, an approval by someone else, access for the time granted, and the door closing after it', async () => {
    assert.equal((await initialize('bob')).status, 403, 'bob is not in sre');

    const asked = await cli('bob', 'request', 'prod', '--for', '30s', '--reason', 'incident 4711: restart the worker');
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stdout, /request (ar_\S+): bob asks for 'prod' for 30s \(waiting for an approver/);
    const id = /request (ar_\S+):/.exec(asked.stdout)![1]!;

    const own = await api('bob', 'POST', `/api/access/${id}/approve`);
    assert.equal(own.status, 403);
    assert.match(own.body.error!, /approving access to 'prod' needs membership of approvers/);
    const stranger = await api('eve', 'POST', `/api/access/${id}/approve`);
    assert.equal(stranger.status, 404, "eve may not even see bob's request");

    const listed = await cli('alice', 'list', '--status', 'pending');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${id} +prod +bob +30s +pending .*incident 4711: restart the worker`));

    const approved = await cli('alice', 'approve', id, '--note', 'go ahead');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /bob may use 'prod' until .* \(approved by alice\)/);
    const again = await api('alice', 'POST', `/api/access/${id}/approve`);
    assert.equal(again.status, 409);

    const sessionId = await rawInitialize(gw.mcp('prod'), { authorization: `Bearer ${tokens.bob}` });
    const opened = (await allEvents(gw.gateway.recorder!.store, sessionId))[0]!;
    assert.match(JSON.parse(opened.payload).access, new RegExp(`just-in-time grant ${id} approved by alice until`));

    // When the grant runs out, the session ends, and a new one is refused. (30 s: time enough for the steps above on a
    // busy machine, where each CLI run and the connection's first server start cost seconds; 3 s, then 10 s, ran out
    // before the session had opened.)
    await waitFor(async () => !gw.gateway.sessions.get(sessionId)?.isOpen, 'the session to end with the grant', 60_000);
    const ping = await fetch(gw.mcp('prod'), {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${tokens.bob}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
    });
    assert.equal(ping.status, 403);
    assert.equal((await initialize('bob')).status, 403);
    await waitFor(async () => (await gw.gateway.recorder!.store.getSession(sessionId))?.status === 'closed', 'the session to be sealed');
    assert.match((await gw.gateway.recorder!.store.getSession(sessionId))!.closeReason ?? '', /access grant expired/);

    await waitFor(async () => (await ledgerAccess()).some((e) => e.id === id && e.event === 'expired'), 'the expiry in the ledger');
    const events = (await ledgerAccess()).filter((e) => e.id === id);
    assert.deepEqual(
      events.map((e) => [e.event, e.by?.subject ?? null]),
      [
        ['requested', 'bob'],
        ['approved', 'alice'],
        ['expired', null],
      ],
    );
  });

  it('a denied request lets nobody in and cannot be approved afterwards', async () => {
    const request = await requestFor('eve', '10m');
    const denied = await api('alice', 'POST', `/api/access/${request.id}/deny`, { note: 'not on call' });
    assert.equal(denied.status, 200);
    assert.equal(denied.body.request!.status, 'denied');
    assert.equal((await api('alice', 'POST', `/api/access/${request.id}/approve`)).status, 409);
    assert.equal((await initialize('eve')).status, 403);
  });

  it('a revoked grant ends its sessions at once', async () => {
    const request = await requestFor('bob', '30m');
    assert.equal((await api('alice', 'POST', `/api/access/${request.id}/approve`)).status, 200);
    const sessionId = await rawInitialize(gw.mcp('prod'), { authorization: `Bearer ${tokens.bob}` });
    const revoked = await cli('alice', 'revoke', request.id, '--note', 'incident over');
    assert.equal(revoked.code, 0, revoked.stderr);
    await waitFor(async () => !gw.gateway.sessions.get(sessionId)?.isOpen, 'the session to end', 5000);
    assert.equal((await initialize('bob')).status, 403);
    assert.ok((await ledgerAccess()).some((e) => e.id === request.id && e.event === 'revoked' && e.by?.subject === 'alice'));
  });

  it('an approver cannot approve their own request', async () => {
    const mine = await requestFor('carol', '10m');
    const self = await api('carol', 'POST', `/api/access/${mine.id}/approve`);
    assert.equal(self.status, 403);
    assert.match(self.body.error!, /you cannot approve your own access request/);
    assert.equal((await api('carol', 'GET', `/api/access/${mine.id}`)).body.request!.status, 'pending');
  });

  it('refuses what cannot be granted, saying why', async () => {
    const long = await api('bob', 'POST', '/api/access', { connection: 'prod', duration: '2h', reason: 'x' });
    assert.equal(long.status, 400);
    assert.match(long.body.error!, /at most 60 minutes \(access\.maxGrant\)/);
    const noApprovers = await api('bob', 'POST', '/api/access', { connection: 'lab', duration: '10m', reason: 'x' });
    assert.equal(noApprovers.status, 400);
    assert.match(noApprovers.body.error!, /takes no access requests/);
    const noReason = await api('bob', 'POST', '/api/access', { connection: 'prod', duration: '10m' });
    assert.equal(noReason.status, 400);
    const anonymous = await fetch(new URL('/api/access', gw.url));
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /resource_metadata=/);
    const first = await requestFor('eve', '5m');
    const twice = await api('eve', 'POST', '/api/access', { connection: 'prod', duration: '5m', reason: 'again' });
    assert.equal(twice.status, 409);
    assert.match(twice.body.error!, new RegExp(`${first.id} .* is still waiting`));
  });
});
