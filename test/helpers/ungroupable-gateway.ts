import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../src/core/identity.js';
import type { ErasedModernSession, ListedGroup, UnreadableModernSession } from '../../src/recording/session-groups.js';
import { openStore } from '../../src/store/open.js';
import { callApi } from './api.js';
import { type EchoServer, startEchoServer } from './echo-server.js';
import { encryptRecordings, eraseThroughApi, eraseWithSqlLike, localEncryption } from './encrypted-gateway.js';
import { flipCiphertext, testKeyring, testSigner, writeRecordedSession } from './encryption.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { recordModernSession } from './modern-session.js';
import { mcpHeaders, rawInitialize } from './raw-http.js';
import { storeSql } from './stores.js';

/**
 * A gateway whose modern (2026-07-28) recordings the grouped view cannot all group, as the console's and the CLI's
 * tests of it share it. Its recordings are encrypted under its one KEK (k1); modern sessions as the modern edge records
 * them, on connection `echo`, of these users: ada's trace over two pooled sessions, the first erased by an admin (adam);
 * eve's one session erased; ned's data key destroyed with SQL (no signed ledger entry vouches for it); kim's kept;
 * olga's recorded by a replica under KEK k2, which this one does not have (it trusts the replica's signing key); lou's
 * with a later event's ciphertext altered (its opening reads).
 */
export interface UngroupableGateway {
  gw: TestGateway;
  /** adam's token: an admin and auditor (sees everyone's). */
  adam: string;
  /** Pooled sessions, each user's in order. */
  sessions: { ada: string[]; eve: string; ned: string; kim: string; olga: string; lou: string };
  /** Group ids as they were before the erasure; ada's after it (her first session's part is gone). */
  groupIds: { adaBefore: string; adaAfter: string; eve: string; ned: string; kim: string };
  /** The gateway's config as a CLI run on its host reads it (its data directory, store and KEK). */
  config: Record<string, unknown>;
  /** The API's listing of the groups of `echo`, as `token`'s holder (adam by default). */
  listed(token?: string): Promise<GroupListing>;
  stop(): Promise<void>;
}

/** GET /api/sessions/groups. */
export interface GroupListing {
  groups: ListedGroup[];
  erased: ErasedModernSession[];
  unreadable: UnreadableModernSession[];
}

export async function startUngroupableGateway(): Promise<UngroupableGateway> {
  const echo: EchoServer = await startEchoServer();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ungroupable-'));
  let gw: TestGateway | undefined;
  const stop = async () => {
    await gw?.stop();
    await echo.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The replica that recorded olga's session: this gateway trusts its key (recording.trustedKeys), as replicas do.
    const replica = testSigner().key;
    const users = { adam: ['admins', 'auditors'], ada: ['testers'], eve: ['testers'], ned: ['testers'], kim: ['testers'], lou: ['testers'] };
    const config = {
      dataDir: join(dir, 'data'),
      identity: { dev: { users } },
      roles: { auditors: ['auditors'], admins: ['admins'] },
      recording: { encryption: localEncryption(dir), trustedKeys: [replica.publicKeyPem] },
      connections: { echo: { http: { url: echo.url } } },
    };
    const started = await startTestGateway(config);
    gw = started;
    const adam = await started.tokenFor('adam');
    const listed = async (token = adam): Promise<GroupListing> => {
      const r = await callApi<GroupListing>(started.url, token, 'GET', '/api/sessions/groups?connection=echo');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body;
    };
    /** A user's identity as the gateway authenticates them (from a session opened with their token, then ended). */
    const identityOf = async (user: string): Promise<Identity> => {
      const auth = { authorization: `Bearer ${await started.tokenFor(user)}` };
      const id = await rawInitialize(started.mcp('echo'), auth);
      const identity = started.gateway.sessions.get(id)!.identity;
      await fetch(started.mcp('echo'), { method: 'DELETE', headers: { ...mcpHeaders, ...auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' } });
      return identity;
    };
    const record = async (identity: Identity, id: number, trace: string) =>
      recordModernSession(started, 'echo', identity, [{ id, message: `${identity.subject} ${id}`, trace }]);
    const ada = await identityOf('ada');
    const trace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
    const sessions = { ada: [await record(ada, 2, trace), await record(ada, 3, trace)], eve: '', ned: '', kim: '', olga: '', lou: '' };
    sessions.eve = await record(await identityOf('eve'), 2, 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee2');
    sessions.ned = await record(await identityOf('ned'), 2, 'ddddddddddddddddddddddddddddddd3');
    sessions.kim = await record(await identityOf('kim'), 2, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb4');
    sessions.lou = await record(await identityOf('lou'), 2, 'ccccccccccccccccccccccccccccccc5');
    await encryptRecordings(started);

    const before = await listed();
    const groupOf = (g: GroupListing, session: string) => g.groups.find((x) => x.sessions.includes(session))?.id ?? '';
    const groupIds = { adaBefore: groupOf(before, sessions.ada[0]!), adaAfter: '', eve: '', ned: '', kim: '' };
    assert.deepEqual(before.groups.find((g) => g.id === groupIds.adaBefore)?.sessions, sessions.ada, "ada's trace is one group over both her sessions");
    for (const who of ['eve', 'ned', 'kim'] as const) groupIds[who] = groupOf(before, sessions[who]);
    assert.deepEqual([before.erased, before.unreadable], [[], []], 'nothing erased or unreadable yet');

    await eraseThroughApi(started, adam, [sessions.ada[0]!, sessions.eve], 'privacy request 7');
    // The same admin and a like reason, written into ned's key row with SQL: only the signed ledger entry is missing.
    await eraseWithSqlLike(started, adam, sessions.eve, sessions.ned, 'privacy request 8');
    // Behind the gateway's back, on a second connection to its store (as stored: encrypted).
    const db = `sqlite:${join(started.dataDir, 'portcullis.db')}`;
    const side = await openStore(db);
    try {
      // lou's last message (the answer to her call), its ciphertext altered: her opening still reads.
      const last = (await side.events(sessions.lou, -1, 100)).filter((e) => e.kind === 'message').at(-1)!;
      await storeSql({ url: db }, 'sqlite')(
        'UPDATE events SET payload = ? WHERE session_id = ? AND seq = ?',
        flipCiphertext(last.payload),
        sessions.lou,
        last.seq,
      );
      // olga's, as a replica encrypting under k2 recorded it into the shared store.
      const written = await writeRecordedSession(side, { keyring: testKeyring(['k2']), signer: replica, subject: 'olga', edge: 'modern', connection: 'echo' });
      sessions.olga = written.session.id;
    } finally {
      await side.close();
    }
    // kim's session is encrypted with a live key: her group shows no badge because nothing of hers is erased.
    const keys = await started.gateway.recorder!.store.dataKeys([...sessions.ada, sessions.eve, sessions.ned, sessions.kim]);
    assert.deepEqual(
      keys
        .filter((k) => k.wrapped !== null)
        .map((k) => k.owner)
        .sort(),
      [sessions.ada[1], sessions.kim].sort(),
      'live keys: the kept ones',
    );
    assert.equal(keys.length, 5, 'each session has a data key');
    groupIds.adaAfter = groupOf(await listed(), sessions.ada[1]!);
    assert.ok(groupIds.adaAfter.startsWith(`${sessions.ada[1]}.`), 'what is left of her group is named by its first readable request');
    return { gw: started, adam, sessions, groupIds, config: { ...config, listen: '127.0.0.1:1' }, listed, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
