import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { latestVersion, sqliteMigrations } from '../../src/store/migrations.js';
import { nowUs } from '../../src/recording/time.js';
import { openStore } from '../../src/store/open.js';
import { type Store, StoreSchemaError, StoreUnavailableError } from '../../src/store/store.js';
import type { AccessRequestRow } from '../../src/store/access-types.js';
import type { AgentRow } from '../../src/store/agent-types.js';
import type { ToolPinRow } from '../../src/store/pin-types.js';
import type { ReviewApproval, ReviewRow } from '../../src/store/review-types.js';
import { emptyBatch, type EventRow, type LedgerRow, openSessionRow, type SessionRow, type WriteBatch } from '../../src/store/types.js';
import { readingOf } from '../../src/encryption/readable-store.js';
import { isSealed } from '../../src/encryption/envelope.js';
import { encryptingStore, testKeyring } from '../helpers/encryption.js';
import { toolPin } from '../helpers/pin-rows.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { upgradeFrom } from '../helpers/store-versions.js';

/**
 * One suite, both backends: what the recorder writes, the CLI and the API read back exactly. Each backend also runs
 * it with recording encryption on: written as an encrypting gateway writes (payloads, review params and access
 * reasons sealed, data keys beside them) and read through the readable store, it must read back the same.
 */
const variants = backends.flatMap((backend) => [false, true].map((encrypted) => ({ backend, encrypted })));

let counter = 0;
function session(over: Partial<SessionRow> = {}): SessionRow {
  counter++;
  return {
    ...openSessionRow({
      id: `s-${counter}-${Math.random().toString(36).slice(2, 8)}`,
      instanceId: 'gw-a',
      connection: 'everything',
      subject: 'alice',
      email: 'alice@example.com',
      groups: ['eng', 'sre'],
      remoteAddress: '127.0.0.1',
      openedAtUs: 1_790_000_000_000_000 + counter * 1000,
    }),
    ...over,
  };
}

function event(sessionId: string, seq: number, payload = `{"jsonrpc":"2.0","id":${seq},"method":"ping"}`): EventRow {
  return {
    sessionId,
    seq,
    timeUs: 1_790_000_000_000_000 + seq,
    monoUs: seq * 10,
    kind: 'message',
    direction: seq % 2 === 0 ? 'toServer' : 'toClient',
    boundary: 'received',
    payload,
    forwarded: seq % 3 === 0 ? `{"forwarded":${seq}}` : null,
    hash: `${seq}`.padStart(64, 'a'),
  };
}

function ledgerRow(instanceId: string, seq: number, sessionId: string, kind: LedgerRow['kind'] = 'opened'): LedgerRow {
  return { instanceId, seq, timeUs: 1_790_000_000_000_000 + seq, kind, sessionId, detail: JSON.stringify({ n: seq }), hash: `${seq}`.padStart(64, 'b') };
}

function batch(parts: Partial<WriteBatch>): WriteBatch {
  return { ...emptyBatch(), ...parts };
}

function review(over: Partial<ReviewRow> = {}): ReviewRow {
  counter++;
  return {
    id: `rv-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    status: 'pending',
    rule: 'prod-writes',
    connection: 'prod',
    sessionId: 's-held',
    instanceId: 'gw-a',
    method: 'tools/call',
    target: 'drop_table',
    virtualServer: null,
    virtualTarget: null,
    params: JSON.stringify({ name: 'drop_table', arguments: { table: 'users', note: 'quote " backslash \\ ünïcode 🐉' } }),
    digest: 'd'.repeat(64),
    requesterSubject: 'bob',
    requesterIssuer: 'https://idp.example.com',
    requesterEmail: 'bob@example.com',
    approverGroups: ['sre', 'dba'],
    minApprovals: 2,
    approvals: [],
    createdAtUs: 1_790_000_000_000_000 + counter,
    expiresAtUs: 1_790_000_300_000_000 + counter,
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    deciderEmail: null,
    decisionNote: null,
    ...over,
  };
}

function approval(subject: string, over: Partial<ReviewApproval> = {}): ReviewApproval {
  return { subject, issuer: 'https://idp.example.com', email: `${subject}@example.com`, atUs: 1_790_000_100_000_000, note: null, ...over };
}

function agent(over: Partial<AgentRow> = {}): AgentRow {
  counter++;
  return {
    name: `agent-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    tokenHash: counter.toString(16).padStart(64, 'c'),
    createdAtUs: 1_790_000_000_000_000 + counter,
    revokedAtUs: null,
    lastSeenAtUs: null,
    ...over,
  };
}

/** One pin as `listToolPins` has it. */
async function pinOf(store: Store, connection: string, tool: string): Promise<ToolPinRow | undefined> {
  return (await store.listToolPins(connection)).find((p) => p.tool === tool);
}

for (const { backend, encrypted } of variants) {
  describe(`store contract: ${backend.name}${encrypted ? ', recording encryption on' : ''}`, () => {
    let ts: TestStore;
    let store: Store;

    before(async () => {
      ts = backend.make();
      store = await ts.open();
      if (encrypted) store = encryptingStore(store, testKeyring());
    });
    after(async () => {
      await store?.close();
      await ts?.destroy();
    });

    it('migrates to the latest version, and again is a no-op', async () => {
      assert.equal(await store.migrate(), latestVersion(sqliteMigrations));
      assert.equal(await store.migrate(), latestVersion(sqliteMigrations));
      await store.checkSchema();
      assert.equal(store.backend, backend.name);
    });

    it('keeps one shared token key: the first candidate stored wins, for every gateway on the store', async () => {
      const first = await store.sharedTokenKey('candidate-one', 1);
      assert.equal(first, 'candidate-one');
      const other = await ts.open();
      try {
        assert.equal(await other.sharedTokenKey('candidate-two', 2), 'candidate-one');
      } finally {
        await other.close();
      }
    });

    it('writes a session with its events and ledger rows in one batch, and reads them back exactly', async () => {
      const s = session({ clientInfo: { name: 'c', version: '1' } });
      const events = [event(s.id, 0), event(s.id, 1), event(s.id, 2)];
      await store.write(batch({ sessionsOpened: [s], events, ledger: [ledgerRow('gw-contract', 0, s.id)] }));
      assert.deepEqual(await store.getSession(s.id), s);
      assert.deepEqual(await store.events(s.id, -1, 100), events);
      assert.deepEqual(await store.events(s.id, 0, 1), [events[1]]);
      assert.deepEqual(await store.lastEvent(s.id), events[2]);
      assert.equal(await store.lastEvent('nope'), undefined);
      assert.equal(await store.getSession('nope'), undefined);
      assert.deepEqual(await store.ledgerFor(s.id), [ledgerRow('gw-contract', 0, s.id)]);
    });

    if (encrypted) {
      it('with encryption on, payloads, review params and access reasons are stored sealed and read back plain', async () => {
        const { raw } = readingOf(store);
        const s = session();
        const events = [event(s.id, 0), event(s.id, 3)];
        await store.write(batch({ sessionsOpened: [s], events }));
        const stored = await raw.events(s.id, -1, 10);
        assert.ok(stored.every((e) => isSealed(e.payload) && (e.forwarded === null || isSealed(e.forwarded))));
        assert.notEqual(stored[1]!.forwarded, null);
        assert.deepEqual(await store.events(s.id, -1, 10), events);
        assert.deepEqual(
          (await raw.dataKeys([s.id])).map((k) => k.owner),
          [s.id],
        );
        const r = review({ sessionId: s.id });
        await store.insertReview(r);
        assert.ok(isSealed((await raw.getReview(r.id))!.params));
        assert.deepEqual(await store.getReview(r.id), r);
      });
    }

    it('stores large and awkward payloads whole', async () => {
      const s = session();
      const big = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(5 * 1024 * 1024) } });
      const awkward = JSON.stringify({ jsonrpc: '2.0', id: 2, result: { t: 'quote " backslash \\ nul \u0000 emoji 🐉 newline \n tab \t ümlaut' } });
      await store.write(batch({ sessionsOpened: [s], events: [event(s.id, 0, big), event(s.id, 1, awkward)] }));
      const back = await store.events(s.id, -1, 10);
      assert.equal(back[0]!.payload.length, big.length);
      assert.equal(back[0]!.payload, big);
      assert.equal(back[1]!.payload, awkward);
    });

    it('a batch is atomic: one bad row and nothing of it is written', async () => {
      const s = session();
      await store.write(batch({ sessionsOpened: [s], events: [event(s.id, 0)] }));
      const t = session();
      await assert.rejects(
        store.write(batch({ sessionsOpened: [t], events: [event(t.id, 0), event(s.id, 0)] })),
        (err: unknown) => err instanceof StoreUnavailableError && /did not take the write|failed/.test(err.message),
      );
      assert.equal(await store.getSession(t.id), undefined);
      assert.deepEqual(await store.events(t.id, -1, 10), []);
      assert.equal((await store.events(s.id, -1, 10)).length, 1);
    });

    it('updates what initialize negotiated and the seal, for sessions of earlier batches and of the same batch', async () => {
      const older = session();
      await store.write(batch({ sessionsOpened: [older] }));
      const same = session();
      const negotiated = { clientInfo: { name: 'inspector' }, serverInfo: { name: 'everything' }, protocolVersion: '2025-11-25' };
      const seal = {
        status: 'closed' as const,
        closedAtUs: same.openedAtUs + 5,
        closeReason: 'client ended the session',
        eventCount: 0,
        lastHash: 'f'.repeat(64),
        seal: 'c2lnbmF0dXJl',
        sealKeyId: 'abcdef0123456789',
        denials: 2,
        redactions: 3,
      };
      await store.write(
        batch({
          sessionsOpened: [same],
          negotiated: [
            { id: older.id, ...negotiated },
            { id: same.id, ...negotiated },
          ],
          sealed: [
            { id: older.id, ...seal },
            { id: same.id, ...seal },
          ],
        }),
      );
      for (const id of [older.id, same.id]) {
        const row = (await store.getSession(id))!;
        assert.deepEqual(row.clientInfo, negotiated.clientInfo);
        assert.deepEqual(row.serverInfo, negotiated.serverInfo);
        assert.equal(row.protocolVersion, '2025-11-25');
        assert.equal(row.status, 'closed');
        assert.equal(row.closedAtUs, seal.closedAtUs);
        assert.equal(row.closeReason, seal.closeReason);
        assert.equal(row.eventCount, 0);
        assert.equal(row.lastHash, seal.lastHash);
        assert.equal(row.seal, seal.seal);
        assert.equal(row.sealKeyId, seal.sealKeyId);
        assert.equal(row.denials, 2);
        assert.equal(row.redactions, 3);
      }
    });

    it('lists sessions newest first with filters and a keyset cursor', async () => {
      const base = 1_800_000_000_000_000;
      const rows = [
        session({ subject: 'lister-a', connection: 'c1', openedAtUs: base + 1 }),
        session({ subject: 'lister-a', connection: 'c2', openedAtUs: base + 2, status: 'closed', closedAtUs: base + 9, denials: 1 }),
        session({ subject: 'lister-b', connection: 'c1', openedAtUs: base + 3, status: 'cut-off', closedAtUs: base + 9, redactions: 4 }),
        session({ id: 'tie-b', subject: 'lister-b', connection: 'c1', openedAtUs: base + 4 }),
        session({ id: 'tie-a', subject: 'lister-b', connection: 'c1', openedAtUs: base + 4, edge: 'modern' }),
      ];
      await store.write(batch({ sessionsOpened: rows }));
      const ids = (list: SessionRow[]) => list.map((r) => r.id);
      const window = { fromUs: base, toUs: base + 100, limit: 50 };
      assert.deepEqual(ids(await store.listSessions(window)), ['tie-b', 'tie-a', rows[2]!.id, rows[1]!.id, rows[0]!.id]);
      assert.deepEqual(ids(await store.listSessions({ ...window, subject: 'lister-a' })), [rows[1]!.id, rows[0]!.id]);
      assert.deepEqual(ids(await store.listSessions({ ...window, connection: 'c2' })), [rows[1]!.id]);
      assert.deepEqual(ids(await store.listSessions({ ...window, status: 'cut-off' })), [rows[2]!.id]);
      assert.deepEqual(ids(await store.listSessions({ ...window, hadDenial: true })), [rows[1]!.id]);
      assert.deepEqual(ids(await store.listSessions({ ...window, hadRedaction: true })), [rows[2]!.id]);
      assert.deepEqual(ids(await store.listSessions({ ...window, era: 'modern' })), ['tie-a']);
      assert.deepEqual(ids(await store.listSessions({ ...window, era: 'legacy' })), ['tie-b', rows[2]!.id, rows[1]!.id, rows[0]!.id]);
      assert.deepEqual(ids(await store.listSessions({ fromUs: base + 2, toUs: base + 4, limit: 50 })), [rows[2]!.id, rows[1]!.id]);
      // Pages of two, following the cursor, see every row once, ties included.
      const seen: string[] = [];
      let before: { openedAtUs: number; id: string } | undefined;
      for (;;) {
        const page = await store.listSessions({ ...window, limit: 2, ...(before ? { before } : {}) });
        if (page.length === 0) break;
        seen.push(...ids(page));
        const last = page.at(-1)!;
        before = { openedAtUs: last.openedAtUs, id: last.id };
      }
      assert.deepEqual(seen, ['tie-b', 'tie-a', rows[2]!.id, rows[1]!.id, rows[0]!.id]);
    });

    it('finds sessions by text in the user, e-mail, connection or id, ignoring case, with % and _ taken literally', async () => {
      const base = 1_900_000_000_000_000;
      const rows = [
        session({ id: 'srch-Alpha-1', subject: 'Grace.Hopper', email: 'grace@navy.example', connection: 'Prod_DB', openedAtUs: base + 1 }),
        session({ id: 'srch-beta-2', subject: 'linus', email: null, connection: 'prodXdb', openedAtUs: base + 2 }),
        session({ id: 'srch-gamma-3', subject: '100%-user', connection: 'staging', openedAtUs: base + 3 }),
      ];
      await store.write(batch({ sessionsOpened: rows }));
      const found = async (search: string) => (await store.listSessions({ search, fromUs: base, toUs: base + 100, limit: 50 })).map((r) => r.id);
      assert.deepEqual(await found('grace.HOPPER'), ['srch-Alpha-1'], 'the user, any case');
      assert.deepEqual(await found('NAVY.ex'), ['srch-Alpha-1'], 'the e-mail');
      assert.deepEqual(await found('prod_db'), ['srch-Alpha-1'], '_ is a literal: prodXdb does not match');
      assert.deepEqual(await found('prod'), ['srch-beta-2', 'srch-Alpha-1'], 'the connection');
      assert.deepEqual(await found('alpha-1'), ['srch-Alpha-1'], 'the id');
      assert.deepEqual(await found('0%-'), ['srch-gamma-3'], '% is a literal');
      assert.deepEqual(await found('\\'), [], 'a backslash is a literal too');
      assert.deepEqual(await found('nowhere'), []);
      assert.deepEqual(
        (await store.listSessions({ search: 'srch-', status: 'open', fromUs: base, toUs: base + 100, limit: 2 })).map((r) => r.id),
        ['srch-gamma-3', 'srch-beta-2'],
        'with other filters and a limit',
      );
    });

    it('finds open sessions by instance, and expired closed ones oldest first', async () => {
      const a = session({ instanceId: 'gw-open-a' });
      const b = session({ instanceId: 'gw-open-b' });
      const closedOld = session({ instanceId: 'gw-open-a', status: 'closed', closedAtUs: 1000 });
      const closedNew = session({ instanceId: 'gw-open-a', status: 'closed', closedAtUs: 2000 });
      await store.write(batch({ sessionsOpened: [a, b, closedOld, closedNew] }));
      assert.deepEqual(
        (await store.openSessions(['gw-open-a'])).map((s) => s.id),
        [a.id],
      );
      assert.deepEqual((await store.openSessions(['gw-open-a', 'gw-open-b'])).map((s) => s.id).sort(), [a.id, b.id].sort());
      assert.deepEqual(await store.openSessions([]), []);
      assert.ok((await store.openSessions()).some((s) => s.id === b.id));
      assert.deepEqual(
        (await store.expiredSessions(1500, 10)).map((s) => s.id),
        [closedOld.id],
      );
      assert.deepEqual(
        (await store.expiredSessions(2500, 10)).map((s) => s.id),
        [closedOld.id, closedNew.id],
      );
      assert.deepEqual(
        (await store.expiredSessions(2500, 1)).map((s) => s.id),
        [closedOld.id],
      );
    });

    it('deletes a session and its events', async () => {
      const s = session({ status: 'closed', closedAtUs: 5 });
      await store.write(batch({ sessionsOpened: [s], events: [event(s.id, 0), event(s.id, 1)] }));
      await store.write(batch({ deletions: [s.id], ledger: [ledgerRow('gw-del', 0, s.id, 'tombstone')] }));
      assert.equal(await store.getSession(s.id), undefined);
      assert.deepEqual(await store.events(s.id, -1, 10), []);
      assert.deepEqual(
        (await store.ledgerFor(s.id)).map((l) => l.kind),
        ['tombstone'],
      );
    });

    it('keeps one ledger chain per instance', async () => {
      await store.write(batch({ ledger: [ledgerRow('gw-l1', 0, 'x'), ledgerRow('gw-l1', 1, 'y', 'sealed'), ledgerRow('gw-l2', 0, 'z')] }));
      assert.deepEqual(
        (await store.ledger('gw-l1', -1, 10)).map((l) => l.seq),
        [0, 1],
      );
      assert.deepEqual(
        (await store.ledger('gw-l1', 0, 10)).map((l) => l.sessionId),
        ['y'],
      );
      assert.deepEqual((await store.ledgerHead('gw-l1'))?.seq, 1);
      assert.equal(await store.ledgerHead('gw-none'), undefined);
      const instances = await store.ledgerInstances();
      assert.ok(instances.includes('gw-l1') && instances.includes('gw-l2'));
      await assert.rejects(store.write(batch({ ledger: [ledgerRow('gw-l1', 1, 'dup')] })), StoreUnavailableError);
    });

    it("tracks instance heartbeats by the store's clock", async () => {
      const hour = 3_600_000_000;
      // Planted an hour and two hours ago (this machine's clock is the store's here); the other by the store's clock.
      await store.heartbeat('gw-hb-old', { nowUs: nowUs() - 2 * hour });
      await store.heartbeat('gw-hb-old', { nowUs: nowUs() - hour });
      await store.heartbeat('gw-hb-new');
      const stale = await store.staleInstances(hour / 2);
      assert.ok(stale.includes('gw-hb-old'));
      assert.ok(!stale.includes('gw-hb-new'));
      assert.ok(!(await store.staleInstances(2 * hour)).includes('gw-hb-old'));
    });

    it('registers signing keys once', async () => {
      const key = { keyId: 'k1', publicKey: '-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n', instanceId: 'gw-a', createdAtUs: 1 };
      await store.registerKey(key);
      await store.registerKey({ ...key, createdAtUs: 2 });
      assert.deepEqual(
        (await store.keys()).filter((k) => k.keyId === 'k1'),
        [key],
      );
    });

    it('keeps access requests, moves them on only from the status expected, and lists them newest first', async () => {
      const base: AccessRequestRow = {
        id: 'ar_1',
        connection: 'prod',
        requesterSubject: 'bob',
        requesterIssuer: 'https://idp.example.com',
        requesterEmail: null,
        reason: 'incident: "quotes", \\ and ünïcode',
        durationMs: 3_600_000,
        status: 'pending',
        createdAtUs: 1_000,
        decidedAtUs: null,
        deciderSubject: null,
        deciderIssuer: null,
        decisionNote: null,
        expiresAtUs: 9_000_000_000,
      };
      assert.equal(await store.insertAccessRequest(base), true);
      assert.equal(await store.insertAccessRequest({ ...base, id: 'ar_2', connection: 'lab', createdAtUs: 2_000 }), true);
      assert.equal(await store.insertAccessRequest({ ...base, id: 'ar_3' }), false, 'one pending request per requester and connection');
      assert.deepEqual(await store.getAccessRequest('ar_1'), base);
      assert.equal(await store.getAccessRequest('ar_none'), undefined);
      assert.deepEqual(
        (await store.listAccessRequests({ limit: 10 })).map((r) => r.id),
        ['ar_2', 'ar_1'],
      );
      assert.deepEqual(
        (await store.listAccessRequests({ connection: 'prod', limit: 10 })).map((r) => r.id),
        ['ar_1'],
      );
      const decision = {
        status: 'approved' as const,
        expiresAtUs: 5_000,
        decidedAtUs: 3_000,
        deciderSubject: 'alice',
        deciderIssuer: 'https://idp.example.com',
        decisionNote: 'ok',
      };
      assert.equal(await store.updateAccessRequest('ar_1', 'pending', decision), true);
      assert.equal(await store.updateAccessRequest('ar_1', 'pending', { ...decision, deciderSubject: 'mallory' }), false, 'a second decision loses');
      assert.deepEqual(await store.getAccessRequest('ar_1'), { ...base, ...decision });
      assert.deepEqual(
        (await store.listAccessRequests({ status: 'approved', limit: 10 })).map((r) => r.id),
        ['ar_1'],
      );
      assert.equal(await store.insertAccessRequest(base), false, 'the same id twice is refused');
      assert.equal(await store.insertAccessRequest({ ...base, id: 'ar_4' }), true, 'once decided, the requester may ask again');
      // With recording encryption the request comes with its reason's data key: written with it, or not at all.
      const key = { owner: 'access:ar_5', kekId: 'k1', wrapped: 'lk1:not-a-key', createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null };
      assert.equal(await store.insertAccessRequest({ ...base, id: 'ar_5' }, key), false, 'ar_4 is still pending');
      assert.deepEqual(await store.dataKeys(['access:ar_5']), [], 'a refused request leaves no data key behind');
    });

    it('keeps reviews: every field reads back exactly, nulls and approvals included', async () => {
      const bare = review({ target: null, requesterEmail: null, approverGroups: [], approvals: [] });
      const decided = review({
        status: 'approved',
        approvals: [approval('carol', { note: 'looks right' }), approval('dave', { email: null, atUs: 1_790_000_200_000_000 })],
        decidedAtUs: 1_790_000_200_000_000,
        deciderSubject: 'dave',
        deciderIssuer: 'https://idp.example.com',
        deciderEmail: 'dave@example.com',
        decisionNote: 'two approvals',
        virtualServer: 'toolbox',
        virtualTarget: 'db__drop_table',
      });
      for (const r of [bare, decided]) {
        await store.insertReview(r);
        assert.deepEqual(await store.getReview(r.id), r);
      }
      assert.equal(await store.getReview('rv-none'), undefined);
      await assert.rejects(store.insertReview({ ...bare, rule: 'other' }), StoreUnavailableError, 'an id is stored once');
      assert.deepEqual(await store.getReview(bare.id), bare);
    });

    it('lists reviews newest first (ties by id), by status, connection and instance, up to the limit', async () => {
      // Later than every other test's reviews, so that the unfiltered listing starts with these.
      const base = 1_900_000_000_000_000;
      const a = review({ connection: 'rv-list-1', instanceId: 'gw-rv-1', createdAtUs: base + 1 });
      const b = review({ connection: 'rv-list-1', instanceId: 'gw-rv-2', createdAtUs: base + 2, status: 'approved' });
      const c = review({ connection: 'rv-list-2', instanceId: 'gw-rv-1', createdAtUs: base + 3 });
      const tieB = review({ id: 'rv-tie-b', connection: 'rv-list-1', instanceId: 'gw-rv-1', createdAtUs: base + 4 });
      const tieA = review({ id: 'rv-tie-a', connection: 'rv-list-1', instanceId: 'gw-rv-1', createdAtUs: base + 4 });
      for (const r of [a, b, c, tieB, tieA]) await store.insertReview(r);
      const ids = async (query: Parameters<Store['listReviews']>[0]) => (await store.listReviews(query)).map((r) => r.id);
      assert.deepEqual(await ids({ limit: 5 }), ['rv-tie-b', 'rv-tie-a', c.id, b.id, a.id]);
      assert.deepEqual(await ids({ limit: 2 }), ['rv-tie-b', 'rv-tie-a']);
      assert.deepEqual(await ids({ connection: 'rv-list-1', limit: 10 }), ['rv-tie-b', 'rv-tie-a', b.id, a.id]);
      assert.deepEqual(await ids({ instanceId: 'gw-rv-1', limit: 10 }), ['rv-tie-b', 'rv-tie-a', c.id, a.id]);
      assert.deepEqual(await ids({ instanceId: 'gw-rv-2', status: 'approved', limit: 10 }), [b.id]);
      assert.deepEqual(await ids({ instanceId: 'gw-rv-2', status: 'pending', limit: 10 }), []);
      assert.deepEqual(await ids({ connection: 'rv-list-1', instanceId: 'gw-rv-1', status: 'pending', limit: 2 }), ['rv-tie-b', 'rv-tie-a']);
    });

    it('updates a review only from the status and approval count expected, and only the fields given', async () => {
      const r = review();
      await store.insertReview(r);
      const carol = approval('carol');
      assert.equal(await store.updateReview(r.id, { status: 'pending', approvalCount: 0 }, { status: 'pending', approvals: [carol] }), true);
      assert.deepEqual(await store.getReview(r.id), { ...r, approvals: [carol] });

      const stale = [
        { from: { status: 'pending' as const, approvalCount: 0 }, why: 'a stale approval count' },
        { from: { status: 'approved' as const, approvalCount: 1 }, why: 'a stale status' },
      ];
      for (const { from, why } of stale) {
        assert.equal(await store.updateReview(r.id, from, { status: 'rejected', approvals: [], decidedAtUs: 5, deciderSubject: 'mallory' }), false, why);
        assert.deepEqual(await store.getReview(r.id), { ...r, approvals: [carol] }, `${why} changes nothing`);
      }
      assert.equal(await store.updateReview('rv-none', { status: 'pending', approvalCount: 0 }, { status: 'expired' }), false);

      const decision = {
        status: 'approved' as const,
        approvals: [carol, approval('dave')],
        decidedAtUs: 1_790_000_200_000_000,
        deciderSubject: 'dave',
        deciderIssuer: 'https://idp.example.com',
        deciderEmail: 'dave@example.com',
        decisionNote: 'two approvals',
      };
      assert.equal(await store.updateReview(r.id, { status: 'pending', approvalCount: 1 }, decision), true);
      assert.deepEqual(await store.getReview(r.id), { ...r, ...decision });
      // The approval count moved with the list: the release is compared against two.
      assert.equal(await store.updateReview(r.id, { status: 'approved', approvalCount: 1 }, { status: 'released' }), false);
      assert.equal(await store.updateReview(r.id, { status: 'approved', approvalCount: 2 }, { status: 'released' }), true);
      assert.deepEqual(await store.getReview(r.id), { ...r, ...decision, status: 'released' });
    });

    it('of concurrent updates from the same state, exactly one wins', async () => {
      const r = review();
      await store.insertReview(r);
      const approvers = ['a1', 'a2', 'a3', 'a4', 'a5'];
      const won = await Promise.all(
        approvers.map((s) => store.updateReview(r.id, { status: 'pending', approvalCount: 0 }, { status: 'pending', approvals: [approval(s)] })),
      );
      assert.equal(won.filter(Boolean).length, 1, `winners: ${JSON.stringify(won)}`);
      assert.deepEqual((await store.getReview(r.id))!.approvals, [approval(approvers[won.indexOf(true)]!)]);

      // The last approval racing the timeout.
      const from = { status: 'pending' as const, approvalCount: 1 };
      const [approved, expired] = await Promise.all([
        store.updateReview(r.id, from, { status: 'approved', approvals: [approval(approvers[won.indexOf(true)]!), approval('b1')], decidedAtUs: 7 }),
        store.updateReview(r.id, from, { status: 'expired', decidedAtUs: 8, decisionNote: 'timed out' }),
      ]);
      assert.equal(Number(approved) + Number(expired), 1);
      assert.equal((await store.getReview(r.id))!.status, approved ? 'approved' : 'expired');
    });

    it('keeps tool pins: every field reads back exactly, nulls included', async () => {
      const full = toolPin({
        connection: 'tp-round',
        pendingDigest: 'b'.repeat(64),
        pendingDefinition: JSON.stringify({ name: 'drop_table', description: 'now drops everything' }),
        pendingSinceUs: 1_790_000_100_000_000,
        removedAtUs: 1_790_000_200_000_000,
        approvedAtUs: 1_790_000_050_000_000,
        approvedBy: 'alice (https://idp.example.com)',
        duplicatedSinceUs: 1_790_000_150_000_000,
        reasons: [{ rule: 'duplicate-name', field: 'name', message: 'another connection offered "drop_table" first', connections: ['staging'] }],
        pendingReasons: [
          { rule: 'bidi-control', field: 'description', message: 'quote " backslash \\ \u202e ünïcode 🐉' },
          { rule: 'hide-from-user', field: 'inputSchema.properties.q.description', message: 'tells the model to keep something from the user' },
        ],
      });
      const bare = toolPin({ connection: 'tp-round', digest: null, definition: null });
      for (const p of [full, bare]) {
        assert.equal(await store.insertToolPin(p), true);
        assert.deepEqual(await pinOf(store, p.connection, p.tool), p);
      }
      assert.equal(await pinOf(store, 'tp-round', 'tool-none'), undefined);
      assert.deepEqual(await store.listToolPins('tp-none'), []);
    });

    it('pins a tool once: inserting it again returns false and changes nothing', async () => {
      const p = toolPin({ connection: 'tp-once' });
      assert.equal(await store.insertToolPin(p), true);
      const other = { ...p, digest: 'f'.repeat(64), definition: '{}', pendingDigest: 'e'.repeat(64), pinnedAtUs: p.pinnedAtUs + 1, approvedBy: 'mallory' };
      assert.equal(await store.insertToolPin(other), false, 'another gateway pinned it first');
      assert.deepEqual(await store.listToolPins('tp-once'), [p]);
      // The same tool on another connection is another pin.
      const elsewhere = { ...p, connection: 'tp-once-2' };
      assert.equal(await store.insertToolPin(elsewhere), true);
      assert.deepEqual(await store.listToolPins('tp-once-2'), [elsewhere]);
      assert.deepEqual(await store.listToolPins('tp-once'), [p]);
    });

    it("pins a connection's first tools in one statement: the tools written, less those pinned already", async () => {
      const first = toolPin({ connection: 'tp-many', tool: 'first' });
      assert.equal(await store.insertToolPin(first), true);
      const rows = ['first', 'second', 'third'].map((tool) => toolPin({ connection: 'tp-many', tool, approvedBy: 'pinned-together' }));
      assert.deepEqual(await store.insertToolPins(rows), new Set(['second', 'third']));
      assert.deepEqual(await store.listToolPins('tp-many'), [first, rows[1], rows[2]]);
      // A second gateway pinning the same list meanwhile writes nothing.
      assert.deepEqual(await store.insertToolPins(rows), new Set());
      // More pins than one statement carries (1,000 each) are all written.
      const many = Array.from({ length: 2_100 }, (_, i) => toolPin({ connection: 'tp-many-2', tool: `tool-${i}` }));
      assert.equal((await store.insertToolPins(many)).size, 2_100);
      assert.equal((await store.listToolPins('tp-many-2')).length, 2_100);
      assert.deepEqual(await store.insertToolPins([]), new Set());
    });

    it('lists tool pins by connection then tool, in byte order, for one connection or all', async () => {
      const names = ['read_file', 'Write', 'read-file', 'über', 'readFile', 'a', 'z'];
      const pins = ['tp-list-b', 'tp-list-A', 'tp-list-a'].flatMap((connection) => names.map((tool) => toolPin({ connection, tool })));
      // Inserted in an order that is not the listing's.
      for (const p of [...pins].reverse()) assert.equal(await store.insertToolPin(p), true);
      const key = (p: ToolPinRow) => `${p.connection}/${p.tool}`;
      const byteOrder = (a: ToolPinRow, b: ToolPinRow) =>
        a.connection < b.connection ? -1 : a.connection > b.connection ? 1 : a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0;
      const expected = [...pins].sort(byteOrder);
      assert.deepEqual(expected.slice(0, 3).map(key), ['tp-list-A/Write', 'tp-list-A/a', 'tp-list-A/read-file']);

      assert.deepEqual(
        await store.listToolPins('tp-list-a'),
        expected.filter((p) => p.connection === 'tp-list-a'),
      );
      assert.deepEqual(
        (await store.listToolPins('tp-list-a')).map((p) => p.tool),
        ['Write', 'a', 'read-file', 'readFile', 'read_file', 'z', 'über'],
      );
      const all = await store.listToolPins();
      assert.deepEqual(
        all.filter((p) => p.connection.startsWith('tp-list-')),
        expected,
      );
      assert.deepEqual([...all].sort(byteOrder).map(key), all.map(key), 'every pin, in order');
      assert.ok(
        all.some((p) => p.connection === 'tp-once'),
        "every connection's pins",
      );
    });

    it('updates a tool pin only while both digests are as expected (null matching null), and only the fields given', async () => {
      const p = toolPin({ connection: 'tp-cas' });
      await store.insertToolPin(p);
      const offered = { pendingDigest: 'b'.repeat(64), pendingDefinition: '{"name":"changed"}', pendingSinceUs: 1_790_000_100_000_000 };
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: p.digest, pendingDigest: null }, offered), true);
      const quarantined = { ...p, ...offered };
      assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), quarantined);

      const approve = {
        digest: 'b'.repeat(64),
        definition: '{"name":"changed"}',
        pendingDigest: null,
        pendingDefinition: null,
        pendingSinceUs: null,
        approvedAtUs: 1_790_000_200_000_000,
        approvedBy: 'alice',
      };
      const stale = [
        { expect: { digest: p.digest, pendingDigest: null }, why: 'a stale pending digest (null, now set)' },
        { expect: { digest: p.digest, pendingDigest: 'c'.repeat(64) }, why: 'a stale pending digest' },
        { expect: { digest: 'c'.repeat(64), pendingDigest: offered.pendingDigest }, why: 'a stale digest' },
        { expect: { digest: null, pendingDigest: offered.pendingDigest }, why: 'a stale digest (null, but set)' },
        { expect: { digest: null, pendingDigest: null }, why: 'both stale' },
      ];
      for (const { expect, why } of stale) {
        assert.equal(await store.updateToolPin('tp-cas', p.tool, expect, approve), false, why);
        assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), quarantined, `${why} changes nothing`);
      }
      assert.equal(
        await store.updateToolPin('tp-cas', 'tool-none', { digest: p.digest, pendingDigest: offered.pendingDigest }, approve),
        false,
        'no such tool',
      );
      assert.equal(
        await store.updateToolPin('tp-none', p.tool, { digest: p.digest, pendingDigest: offered.pendingDigest }, approve),
        false,
        'no such connection',
      );

      // Fields given as null write NULL; fields not given are kept.
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: p.digest, pendingDigest: offered.pendingDigest }, approve), true);
      const approved = { ...p, ...approve };
      assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), approved);
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: approve.digest, pendingDigest: null }, { removedAtUs: 1_790_000_300_000_000 }), true);
      assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), { ...approved, removedAtUs: 1_790_000_300_000_000 });
      // Reasons are written whole, and an empty list clears them.
      const reasons = [{ rule: 'tag-characters', field: 'description', message: 'hides text' }];
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: approve.digest, pendingDigest: null }, { reasons, pendingReasons: reasons }), true);
      assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), { ...approved, removedAtUs: 1_790_000_300_000_000, reasons, pendingReasons: reasons });
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: approve.digest, pendingDigest: null }, { pendingReasons: [] }), true);
      assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), { ...approved, removedAtUs: 1_790_000_300_000_000, reasons });
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: approve.digest, pendingDigest: null }, { reasons: [] }), true);
      // Nothing to write: nothing changes, and the answer says whether the pin is as expected.
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: approve.digest, pendingDigest: null }, {}), true);
      assert.equal(await store.updateToolPin('tp-cas', p.tool, { digest: p.digest, pendingDigest: null }, {}), false);
      assert.deepEqual(await pinOf(store, 'tp-cas', p.tool), { ...approved, removedAtUs: 1_790_000_300_000_000 });

      // A tool never approved: both digests null to start with, then a null digest with a pending one.
      const fresh = toolPin({ connection: 'tp-cas', digest: null, definition: null });
      await store.insertToolPin(fresh);
      assert.equal(
        await store.updateToolPin('tp-cas', fresh.tool, { digest: 'a'.repeat(64), pendingDigest: null }, offered),
        false,
        'a digest where there is none',
      );
      assert.equal(await store.updateToolPin('tp-cas', fresh.tool, { digest: null, pendingDigest: null }, offered), true);
      assert.deepEqual(await pinOf(store, 'tp-cas', fresh.tool), { ...fresh, ...offered });
      assert.equal(await store.updateToolPin('tp-cas', fresh.tool, { digest: null, pendingDigest: null }, approve), false, 'the pending digest moved on');
      assert.equal(await store.updateToolPin('tp-cas', fresh.tool, { digest: null, pendingDigest: offered.pendingDigest }, approve), true);
      assert.deepEqual(await pinOf(store, 'tp-cas', fresh.tool), { ...fresh, ...approve });
    });

    it('of concurrent tool pin updates from the same digests, exactly one wins', async () => {
      const p = toolPin({ connection: 'tp-race' });
      const fresh = toolPin({ connection: 'tp-race', digest: null, definition: null });
      await store.insertToolPin(p);
      await store.insertToolPin(fresh);
      const offers = ['1', '2', '3', '4', '5', '6'].map((c) => ({
        pendingDigest: c.repeat(64),
        pendingDefinition: `{"offer":${c}}`,
        pendingSinceUs: Number(c),
      }));
      for (const [pin, expect] of [
        [p, { digest: p.digest, pendingDigest: null }],
        [fresh, { digest: null, pendingDigest: null }],
      ] as const) {
        const won = await Promise.all(offers.map((to) => store.updateToolPin('tp-race', pin.tool, expect, to)));
        assert.equal(won.filter(Boolean).length, 1, `winners for ${pin.tool}: ${JSON.stringify(won)}`);
        assert.deepEqual(await pinOf(store, 'tp-race', pin.tool), { ...pin, ...offers[won.indexOf(true)]! });
      }

      // An approval racing a newer offer: whichever lands first, the other finds the pending digest moved.
      const current = (await pinOf(store, 'tp-race', p.tool))!;
      const expect = { digest: current.digest, pendingDigest: current.pendingDigest };
      const [approved, reoffered] = await Promise.all([
        store.updateToolPin('tp-race', p.tool, expect, {
          digest: current.pendingDigest,
          definition: current.pendingDefinition,
          pendingDigest: null,
          pendingDefinition: null,
          pendingSinceUs: null,
        }),
        store.updateToolPin('tp-race', p.tool, expect, { pendingDigest: '9'.repeat(64), pendingDefinition: '{"offer":9}', pendingSinceUs: 9 }),
      ]);
      assert.equal(Number(approved) + Number(reoffered), 1);
      assert.equal((await pinOf(store, 'tp-race', p.tool))!.pendingDigest, approved ? null : '9'.repeat(64));
    });

    it('keeps agents: every field reads back exactly, nulls included', async () => {
      const bare = agent();
      const full = agent({ name: 'ag-round ünïcode "quote" \\ 🐉', revokedAtUs: 1_790_000_100_000_000, lastSeenAtUs: 1_790_000_050_000_000 });
      for (const a of [bare, full]) {
        assert.equal(await store.putAgent(a, false), true);
        assert.deepEqual(await store.getAgent(a.name), a);
      }
      assert.equal(await store.getAgent('ag-none'), undefined);
      assert.equal(await store.getAgent(bare.name.toUpperCase()), undefined, 'names are compared exactly');
    });

    it('adds an agent once: putting it again without replace returns false and changes nothing', async () => {
      const a = agent({ lastSeenAtUs: 1_790_000_050_000_000 });
      assert.equal(await store.putAgent(a, false), true);
      const other = { ...a, tokenHash: 'f'.repeat(64), createdAtUs: a.createdAtUs + 1, revokedAtUs: 7, lastSeenAtUs: null };
      assert.equal(await store.putAgent(other, false), false, 'the name is taken');
      assert.deepEqual(await store.getAgent(a.name), a);
    });

    it("with replace, overwrites an agent's token hash and creation time, and clears its revocation", async () => {
      const a = agent({ revokedAtUs: 1_790_000_100_000_000, lastSeenAtUs: 1_790_000_050_000_000 });
      assert.equal(await store.putAgent(a, false), true);
      const rotated = { ...a, tokenHash: 'e'.repeat(64), createdAtUs: 1_790_000_200_000_000, revokedAtUs: null, lastSeenAtUs: null };
      assert.equal(await store.putAgent(rotated, true), true);
      assert.deepEqual(await store.getAgent(a.name), rotated);
      // The row's revocation and last sighting are written as given, not kept.
      const again = { ...rotated, tokenHash: 'd'.repeat(64), revokedAtUs: 5, lastSeenAtUs: 6 };
      assert.equal(await store.putAgent(again, true), true);
      assert.deepEqual(await store.getAgent(a.name), again);
      // A new name with replace is an insert.
      const fresh = agent();
      assert.equal(await store.putAgent(fresh, true), true);
      assert.deepEqual(await store.getAgent(fresh.name), fresh);
    });

    it('lists agents by name, in byte order', async () => {
      const names = ['ag-list-read_file', 'ag-list-Write', 'ag-list-read-file', 'ag-list-über', 'ag-list-readFile', 'ag-list-a', 'ag-list-z', 'ag-list-A'];
      const agents = names.map((name) => agent({ name }));
      // Put in an order that is not the listing's.
      for (const a of [...agents].reverse()) assert.equal(await store.putAgent(a, false), true);
      const byteOrder = (a: AgentRow, b: AgentRow) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      const all = await store.listAgents();
      assert.deepEqual(
        all.filter((a) => a.name.startsWith('ag-list-')).map((a) => a.name),
        ['ag-list-A', 'ag-list-Write', 'ag-list-a', 'ag-list-read-file', 'ag-list-readFile', 'ag-list-read_file', 'ag-list-z', 'ag-list-über'],
      );
      assert.deepEqual(
        all.filter((a) => a.name.startsWith('ag-list-')),
        [...agents].sort(byteOrder),
      );
      assert.deepEqual([...all].sort(byteOrder), all, 'every agent, in order');
      assert.ok(all.length > agents.length, "the other tests' agents too");
    });

    it('updates only the agent fields given (null writes NULL); an unknown agent is false', async () => {
      const a = agent();
      await store.putAgent(a, false);
      assert.equal(await store.updateAgent(a.name, { lastSeenAtUs: 1_790_000_050_000_000 }), true);
      assert.deepEqual(await store.getAgent(a.name), { ...a, lastSeenAtUs: 1_790_000_050_000_000 });
      assert.equal(await store.updateAgent(a.name, { revokedAtUs: 1_790_000_100_000_000 }), true);
      const revoked = { ...a, lastSeenAtUs: 1_790_000_050_000_000, revokedAtUs: 1_790_000_100_000_000 };
      assert.deepEqual(await store.getAgent(a.name), revoked);
      assert.equal(await store.updateAgent(a.name, { lastSeenAtUs: null }), true);
      assert.deepEqual(await store.getAgent(a.name), { ...revoked, lastSeenAtUs: null });
      assert.equal(await store.updateAgent(a.name, { revokedAtUs: null, lastSeenAtUs: 9 }), true);
      assert.deepEqual(await store.getAgent(a.name), { ...a, revokedAtUs: null, lastSeenAtUs: 9 });
      // Nothing to write: nothing changes, and the answer says whether the agent exists.
      assert.equal(await store.updateAgent(a.name, {}), true);
      assert.deepEqual(await store.getAgent(a.name), { ...a, revokedAtUs: null, lastSeenAtUs: 9 });
      assert.equal(await store.updateAgent('ag-none', { revokedAtUs: 1 }), false);
      assert.equal(await store.updateAgent('ag-none', {}), false);
      assert.equal(await store.getAgent('ag-none'), undefined, 'an update creates no agent');
    });

    it('takes a console sign-in once, and only before it expires', async () => {
      const login = {
        state: `st-${Math.random().toString(36).slice(2)}`,
        issuer: 'https://idp.example.com',
        codeVerifier: 'v'.repeat(43),
        nonce: 'n-1',
        returnTo: '/reviews/rv_1?x="y"',
        redirectUri: 'https://gw.example.com/auth/callback',
        resource: 'https://gw.example.com',
        expiresAtUs: 2_000,
      };
      await store.putConsoleLogin(login);
      await assert.rejects(store.putConsoleLogin(login), StoreUnavailableError, 'a state is unique');
      assert.deepEqual(await store.takeConsoleLogin(login.state, 1_000), login);
      assert.equal(await store.takeConsoleLogin(login.state, 1_000), undefined, 'once');
      const late = { ...login, state: `${login.state}-late` };
      await store.putConsoleLogin(late);
      assert.equal(await store.takeConsoleLogin(late.state, 2_000), undefined, 'expired');
      assert.equal(await store.takeConsoleLogin(late.state, 1_000), undefined, 'and gone');
    });

    it('keeps console sessions until they expire or are deleted; prunes the expired', async () => {
      const id = () => Math.random().toString(16).slice(2).padEnd(64, '0');
      const full = {
        idHash: id(),
        subject: 'ada',
        issuer: 'https://idp.example.com',
        email: 'ada@example.com',
        name: 'Ada "L" 🐉',
        groups: ['eng', 'sre'],
        csrfToken: 'c'.repeat(43),
        createdAtUs: 1_000,
        expiresAtUs: 5_000,
      };
      const bare = { ...full, idHash: id(), email: null, name: null, groups: [] };
      for (const s of [full, bare]) {
        await store.putConsoleSession(s);
        assert.deepEqual(await store.getConsoleSession(s.idHash, 4_999), s);
        assert.equal(await store.getConsoleSession(s.idHash, 5_000), undefined, 'expired');
      }
      await store.deleteConsoleSession(bare.idHash);
      assert.equal(await store.getConsoleSession(bare.idHash, 1), undefined);
      const login = {
        state: `st-prune-${id()}`,
        issuer: 'i',
        codeVerifier: 'v',
        nonce: 'n',
        returnTo: '/',
        redirectUri: 'r',
        resource: 'r',
        expiresAtUs: 5_000,
      };
      await store.putConsoleLogin(login);
      const lasting = { ...full, idHash: id(), expiresAtUs: Number.MAX_SAFE_INTEGER };
      await store.putConsoleSession(lasting);
      assert.ok((await store.pruneConsole(5_000)) >= 2, 'the expired session and sign-in');
      assert.equal(await store.getConsoleSession(full.idHash, 1), undefined);
      assert.equal(await store.takeConsoleLogin(login.state, 1), undefined);
      assert.deepEqual(await store.getConsoleSession(lasting.idHash, 5_000), lasting);
    });

    it('an agent write the database refuses is a StoreUnavailableError', async () => {
      const a = agent({ tokenHash: null as unknown as string });
      await assert.rejects(store.putAgent(a, false), StoreUnavailableError);
      await assert.rejects(store.putAgent(a, true), StoreUnavailableError);
      assert.equal(await store.getAgent(a.name), undefined);
    });

    it('brings a version 2 store to the latest version, keeping what it held', async () => {
      const r = review();
      const pin = toolPin({ connection: 'tp-v2' });
      const a = agent();
      await upgradeFrom(
        backend,
        2,
        `INSERT INTO access_requests (id, connection, requester_subject, requester_issuer, reason, duration_ms, status, created_at_us, expires_at_us)
         VALUES ('ar_v2', 'prod', 'bob', 'https://idp.example.com', 'before reviews', 60000, 'pending', 1000, 9000000000);`,
        {
          migrated: async (migrated) => {
            assert.equal((await migrated.getAccessRequest('ar_v2'))?.reason, 'before reviews');
            await migrated.insertReview(r);
            assert.equal(await migrated.insertToolPin(pin), true);
            assert.equal(await migrated.putAgent(a, false), true);
          },
          // The review, the pin and the agent are there.
          reopened: async (reopened) => {
            assert.deepEqual(await reopened.getReview(r.id), r);
            assert.deepEqual(await reopened.listToolPins(), [pin]);
            assert.deepEqual(await reopened.listAgents(), [a]);
          },
        },
      );
    });

    it('brings a version 3 store to the latest version (tool pins, agents), keeping its reviews', async () => {
      const pin = toolPin({ connection: 'tp-v3', digest: null, definition: null, pendingDigest: 'b'.repeat(64), pendingDefinition: '{}', pendingSinceUs: 5 });
      await upgradeFrom(
        backend,
        3,
        `INSERT INTO reviews (id, status, rule, connection, session_id, instance_id, method, params, digest, requester_subject, requester_issuer,
           approver_groups, min_approvals, approvals, approval_count, created_at_us, expires_at_us)
         VALUES ('rv_v3', 'pending', 'prod-writes', 'prod', 's-v3', 'gw-a', 'tools/call', '{}', '${'d'.repeat(64)}', 'bob', 'https://idp.example.com',
           '["sre"]', 1, '[]', 0, 1000, 9000000000);`,
        {
          migrated: async (migrated) => {
            const kept = await migrated.getReview('rv_v3');
            assert.equal(kept?.status, 'pending');
            assert.deepEqual(kept?.approverGroups, ['sre']);
            assert.deepEqual([kept?.virtualServer, kept?.virtualTarget], [null, null], 'a review from before virtual servers came directly');
            assert.deepEqual(await migrated.listToolPins(), []);
            assert.equal(await migrated.insertToolPin(pin), true);
            assert.equal(
              await migrated.updateToolPin(
                'tp-v3',
                pin.tool,
                { digest: null, pendingDigest: pin.pendingDigest },
                { digest: pin.pendingDigest, pendingDigest: null },
              ),
              true,
            );
          },
          reopened: async (reopened) => {
            assert.deepEqual(await reopened.listToolPins('tp-v3'), [{ ...pin, digest: pin.pendingDigest, pendingDigest: null }]);
          },
        },
      );
    });

    it('brings a version 4 store to the latest version (agents, console, pin reasons), keeping its tool pins', async () => {
      const a = agent({ revokedAtUs: 7, lastSeenAtUs: 6 });
      await upgradeFrom(
        backend,
        4,
        `INSERT INTO tool_pins (connection, tool, digest, definition, pinned_at_us)
         VALUES ('tp-v4', 'read_file', '${'a'.repeat(64)}', '{"name":"read_file"}', 1000);`,
        {
          migrated: async (migrated) => {
            assert.deepEqual(
              (await migrated.listToolPins('tp-v4')).map((p) => [p.tool, p.digest, p.definition, p.pinnedAtUs, p.reasons, p.pendingReasons]),
              [['read_file', 'a'.repeat(64), '{"name":"read_file"}', 1000, [], []]],
            );
            assert.deepEqual(await migrated.listAgents(), []);
            assert.equal(await migrated.putAgent(a, false), true);
            assert.equal(await migrated.updateAgent(a.name, { revokedAtUs: null }), true);
          },
          reopened: async (reopened) => {
            assert.deepEqual(await reopened.getAgent(a.name), { ...a, revokedAtUs: null });
            assert.equal((await reopened.listToolPins('tp-v4')).length, 1);
          },
        },
      );
    });
  });
}

describe('store: opening', () => {
  it('a reader refuses a SQLite store that does not exist, saying so', async () => {
    await assert.rejects(openStore('sqlite:/nonexistent/dir/portcullis.db', { reader: true }), (err: unknown) => {
      return err instanceof StoreSchemaError && /does not exist: no recordings yet/.test(err.message);
    });
  });

  it('a PostgreSQL store that cannot be reached is a clear StoreUnavailableError without the password', async () => {
    await assert.rejects(openStore('postgres://u:pw-secret-123@127.0.0.1:9/none'), (err: unknown) => {
      return (
        err instanceof StoreUnavailableError &&
        /PostgreSQL store postgres:\/\/u@127\.0\.0\.1:9\/none failed/.test(err.message) &&
        !err.message.includes('pw-secret-123')
      );
    });
  });
});
