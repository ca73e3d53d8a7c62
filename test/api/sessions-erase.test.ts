import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isSealed } from '../../src/encryption/envelope.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import { callApi } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { encryptRecordings, localEncryption, sealedSession } from '../helpers/encrypted-gateway.js';
import { localApiAuth, startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * POST /api/sessions/erase and `portcullis sessions erase` against a real gateway with recording.encryption: admins
 * only (a person: a machine credential names nobody for the ledger), by subject or by session, and a clear refusal
 * where recordings are plain. Sessions the recorder wrote plain (before it encrypted as it writes) are encrypted
 * first with `store encrypt`'s library on a second connection to the store; once it does, that finds nothing to do.
 */

describe('sessions erase over the API', () => {
  let gw: TestGateway;
  let plainGw: TestGateway;
  let echo: EchoServer;
  let dir: string;
  const tokens: Record<string, string> = {};
  const users = { admin: ['admins'], alice: ['testers'], bob: ['testers'] };

  before(async () => {
    echo = await startEchoServer();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-erase-'));
    gw = await startTestGateway({
      identity: { dev: { users } },
      roles: { admins: ['admins'] },
      recording: { encryption: localEncryption(dir) },
      connections: { echo: { http: { url: echo.url } } },
    });
    plainGw = await startTestGateway({ identity: { dev: { users } }, roles: { admins: ['admins'] }, connections: { echo: { http: { url: echo.url } } } });
    for (const user of Object.keys(users)) tokens[user] = await gw.tokenFor(user);
  });
  after(async () => {
    await gw?.stop();
    await plainGw?.stop();
    await echo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A session of `user`, opened and ended (sealed). */
  const session = (user: string) => sealedSession(gw, 'echo', tokens[user]!);

  const cli = (user: string, ...args: string[]) =>
    runCli(['sessions', 'erase', ...args, '--gateway', gw.url], { env: { PORTCULLIS_TOKEN: tokens[user]!, PORTCULLIS_HOME: '/nonexistent' } });

  it('an admin erases a subject: the CLI says what was erased, verify still passes, the other subject keeps theirs', async () => {
    const alice = [await session('alice'), await session('alice')];
    const bob = await session('bob');
    await encryptRecordings(gw);
    const recorder = gw.gateway.recorder!;
    const store = recorder.store;
    for (const id of [...alice, bob]) assert.ok(isSealed((await store.events(id, -1, 1))[0]!.payload), `${id} is encrypted`);

    const refused = await cli('alice', '--subject', 'alice', '--reason', 'my own data');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /403: erasing recordings needs membership of admins/);
    const machine = await fetch(new URL('/api/sessions/erase', gw.url), {
      method: 'POST',
      headers: { ...localApiAuth(gw.dataDir), 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'alice', reason: 'x' }),
    });
    assert.equal(machine.status, 401, 'a machine credential names nobody to record as the eraser');
    await machine.text();
    const noReason = await callApi<{ error: string }>(gw.url, tokens.admin!, 'POST', '/api/sessions/erase', { subject: 'alice' });
    assert.equal(noReason.status, 400);
    assert.match(noReason.body.error, /reason is required/);
    for (const id of alice) assert.notEqual((await store.dataKeys([id]))[0]!.wrapped, null, 'nothing erased by a refused request');

    const erased = await cli('admin', '--subject', 'alice', '--reason', 'GDPR request 12');
    assert.equal(erased.code, 0, erased.stderr);
    for (const id of alice) assert.match(erased.stdout, new RegExp(`erased +${id} +\\(alice on echo\\)`));
    assert.match(erased.stdout, /2 sessions erased; 0 not erased/);
    assert.doesNotMatch(erased.stdout, new RegExp(bob));

    const trusted = await trustedKeys([recorder.key]);
    for (const id of alice) {
      const [k] = await store.dataKeys([id]);
      assert.equal(k!.wrapped, null);
      assert.match(k!.erasedBy!, /^admin \(/);
      const v = await verifySession(store, id, trusted);
      assert.equal(v.status, 'erased', JSON.stringify(v.problems));
      assert.ok(
        v.notes.some((n) => /erased \(crypto-shredded\) .* by admin .*: GDPR request 12/.test(n)),
        v.notes.join('; '),
      );
    }
    assert.notEqual((await store.dataKeys([bob]))[0]!.wrapped, null, "bob's recording is untouched");
    const ledger = (await store.ledger(recorder.instanceId, -1, 10_000)).filter((l) => l.kind === 'erased');
    assert.deepEqual(ledger.map((l) => l.sessionId).sort(), [...alice].sort());

    // The API (and the console, which reads it) shows who erased a session, when and why.
    const shown = (await (await fetch(new URL(`/api/sessions/${alice[0]}`, gw.url), { headers: gw.apiAuth })).json()) as {
      session: { erased: { erasedAtUs: number; by: string; reason: string } | null };
    };
    assert.match(shown.session.erased!.by, /^admin \(/);
    assert.equal(shown.session.erased!.reason, 'GDPR request 12');
    const listed = (await (await fetch(new URL('/api/sessions?limit=100', gw.url), { headers: gw.apiAuth })).json()) as {
      sessions: Array<{ id: string; erased: unknown }>;
    };
    assert.ok(listed.sessions.find((x) => x.id === alice[1])!.erased);
    assert.equal(listed.sessions.find((x) => x.id === bob)!.erased, null);

    const again = await cli('admin', alice[0]!, '--reason', 'again');
    assert.equal(again.code, 1, 'nothing erased');
    assert.match(again.stdout, new RegExp(`not erased +${alice[0]}: erased before, at .* by admin .*GDPR request 12`));
  });

  it('a gateway recording plain refuses to erase, saying retention deletes', async () => {
    const r = await runCli(['sessions', 'erase', '--subject', 'alice', '--reason', 'x', '--gateway', plainGw.url], {
      env: { PORTCULLIS_TOKEN: await plainGw.tokenFor('admin'), PORTCULLIS_HOME: '/nonexistent' },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /409: recordings are not encrypted: nothing to shred; use retention to delete/);
  });
});
