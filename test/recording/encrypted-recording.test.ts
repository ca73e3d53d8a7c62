import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveSecretString } from '../../src/core/secrets.js';
import { accessReasonAad, accessRequestOwner, eventAad, isSealed, openText, reviewParamsAad } from '../../src/encryption/envelope.js';
import type { Kek } from '../../src/encryption/kek.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { localKek } from '../../src/encryption/keks/local.js';
import { AccessRequests } from '../../src/identity/access-requests.js';
import { ConnectionAccess } from '../../src/identity/access-policy.js';
import { accessSchema } from '../../src/identity/config.js';
import { eventHash, sessionGenesis } from '../../src/recording/chain.js';
import { loadSigningKey, type SigningKey } from '../../src/recording/keys.js';
import type { RecorderOptions } from '../../src/recording/recorder-options.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { SessionRecording } from '../../src/recording/session-recording.js';
import { nowUs } from '../../src/recording/time.js';
import { trustedKeys, verifySession } from '../../src/recording/verify.js';
import { Reviews } from '../../src/reviews/reviews.js';
import type { Store } from '../../src/store/store.js';
import { type EventRow, openSessionRow } from '../../src/store/types.js';
import { backends, databaseDump, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Recordings encrypted at rest, the write path (issue 21): what the recorder stores is ciphertext that opens back to
 * what was recorded, the chain verifies over the stored form without a key, and nothing a session said (seeded with
 * marker words, letters only so that no masking touches them) is anywhere in a dump of the database: not in the
 * SQLite file and its WAL, not in any row of any PostgreSQL table. A plain session beside it shows the dump would
 * find them.
 */

const quiet = pino({ level: 'silent' });
const alice = { subject: 'alice', issuer: 'https://idp', email: 'alice@example.com', groups: ['eng'] };
const bob = { subject: 'bob', issuer: 'https://idp', email: 'bob@example.com', groups: ['ops'] };
const carol = { subject: 'carol', issuer: 'https://idp', email: 'carol@example.com', groups: ['leads'] };

function signingKey(): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  process.env.PORTCULLIS_TEST_ENC_KEY = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return loadSigningKey('/nonexistent', resolveSecretString('${env:PORTCULLIS_TEST_ENC_KEY}'));
}

/** What the encrypted session says: each marker in one place only, so a hit names what leaked. */
const markers = {
  argument: 'QUILLARGUMENTZEBRAWALRUS',
  result: 'QUILLRESULTMARMOSETOCELOT',
  received: 'QUILLRECEIVEDPANGOLINKUDU',
  forwarded: 'QUILLFORWARDEDNARWHALIBEX',
  verdict: 'QUILLVERDICTAXOLOTLTAPIR',
  opening: 'QUILLOPENINGCAPYBARAOKAPI',
  review: 'QUILLREVIEWQUOKKADUGONG',
  reason: 'QUILLREASONGHARIALSAIGA',
};
/** What the plain session says: the dump must find it, or finding nothing above would prove nothing. */
const control = 'QUILLPLAINCONTROLBINTURONG';

const call = (id: number, marker: string) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'search', arguments: { query: marker } } });
const result = (id: number, marker: string) => JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: marker }] } });

async function allEvents(store: Store, sessionId: string): Promise<EventRow[]> {
  return store.events(sessionId, -1, 10_000);
}

for (const backend of backends) {
  describe(`encrypted recording, the write path (${backend.name})`, () => {
    let ts: TestStore;
    let store: Store;
    const signing = signingKey();
    const k1 = localKek('k1', randomBytes(32));
    const keyring = new Keyring([k1], k1);
    let trusted: Map<string, string>;
    // The reviews' timers do not hold the process open (a gateway's server does); here, this does.
    let alive: NodeJS.Timeout;

    before(async () => {
      alive = setInterval(() => {}, 1000);
      ts = backend.make();
      store = await ts.open();
      trusted = await trustedKeys([{ keyId: signing.keyId, publicKeyPem: signing.publicKeyPem }]);
    });
    after(async () => {
      clearInterval(alive);
      await store?.close();
      await ts?.destroy();
    });

    const start = (instanceId: string, extra: Partial<RecorderOptions> = {}) =>
      Recorder.start({ store, instanceId, key: signing, mode: 'write-ahead', log: quiet, ...extra });

    const open = (recorder: Recorder, id: string, opening: unknown = {}) => {
      const row = openSessionRow({ id, instanceId: recorder.instanceId, connection: 'files', subject: 'alice', openedAtUs: nowUs() });
      const rec = new SessionRecording(recorder, recorder.openSession(row));
      rec.lifecycle('open', { ...openingDetails(row), ...(opening as object) });
      return rec;
    };

    /** Just-in-time access to `files` (eng may use it, leads approve) through `recorder`, with the keyring. */
    const accessRequests = (recorder: Recorder) => {
      const access = new ConnectionAccess('files', accessSchema().parse({ groups: ['eng'], approvers: ['leads'] }));
      return new AccessRequests({
        store,
        recorder,
        keyring,
        access: (c) => (c === 'files' ? access : undefined),
        log: quiet,
        inUse: true,
        onGrantEnded: () => {},
      });
    };

    /** The session's data key, as a reader with the KEK gets it: from its stored, wrapped row. */
    const storedKey = async (owner: string) => {
      const [row] = await store.dataKeys([owner]);
      assert.ok(row !== undefined, `no data key stored for ${owner}`);
      return keyring.dataKey(row);
    };

    it('stores ciphertext that opens to what was recorded; the chain and the seal verify over the stored form, without a key', async () => {
      const recorder = await start(`gw-enc-${backend.name}`, { keyring });
      const id = `enc-${backend.name}`;
      const rec = open(recorder, id, { note: markers.opening });
      const recorded = [call(1, markers.argument), result(1, markers.result)];
      rec.message('toServer', 'received', recorded[0]!);
      rec.message('toClient', 'received', recorded[1]!);
      rec.relayed('toServer', call(2, markers.received), call(2, markers.forwarded));
      rec.verdict({ stage: 'mask', action: 'rewrite', direction: 'toClient', sensitive: true, details: { note: markers.verdict } });
      await rec.barrier();
      await rec.close('done');
      await recorder.close();

      const events = await allEvents(store, id);
      assert.equal(events.length, 6);
      const key = await storedKey(id);
      const opened = events.map((e) => {
        assert.ok(isSealed(e.payload), `event ${e.seq}'s payload is stored plain: ${e.payload.slice(0, 80)}`);
        if (e.forwarded !== null) assert.ok(isSealed(e.forwarded), `event ${e.seq}'s forwarded is stored plain`);
        return {
          kind: e.kind,
          payload: openText(key, eventAad(id, e.seq, 'payload'), e.payload, `event ${e.seq}`),
          forwarded: e.forwarded === null ? null : openText(key, eventAad(id, e.seq, 'forwarded'), e.forwarded, `event ${e.seq}`),
        };
      });
      assert.deepEqual(
        opened.map((o) => o.kind),
        ['open', 'message', 'message', 'message', 'verdict', 'close'],
      );
      assert.match(opened[0]!.payload, new RegExp(markers.opening));
      assert.equal(opened[1]!.payload, recorded[0]);
      assert.equal(opened[2]!.payload, recorded[1]);
      assert.equal(opened[3]!.payload, call(2, markers.received));
      assert.equal(opened[3]!.forwarded, call(2, markers.forwarded));
      assert.match(opened[4]!.payload, new RegExp(markers.verdict));
      assert.equal(JSON.parse(opened[5]!.payload).status, 'closed');
      // Bound to its place: a payload opened as another event's does not.
      assert.throws(() => openText(key, eventAad(id, 2, 'payload'), events[1]!.payload, 'moved'), /does not decrypt/);

      // The chain, recomputed from the stored rows alone, and verify (which has no key) over the raw store.
      let previous = sessionGenesis(id);
      for (const e of events) {
        assert.equal(eventHash(previous, e), e.hash, `event ${e.seq}'s hash covers its stored form`);
        previous = e.hash;
      }
      const session = (await store.getSession(id))!;
      assert.equal(session.lastHash, previous);
      const v = await verifySession(store, id, trusted);
      // The row's columns against the opening and close events need those events read (the readable store, E3's part).
      const chainProblems = v.problems.filter((p) => /hash|seal|missing|order/.test(p.message));
      assert.deepEqual(chainProblems, [], JSON.stringify(v.problems));
    });

    it('with a remote KEK, the opening batch waits for the wrapping and stores the wrapped key with the session', async () => {
      const local = localKek('kms', randomBytes(32));
      let release!: () => void;
      const wrapping = new Promise<void>((r) => (release = r));
      let asked = 0;
      // A KMS stand-in: asynchronous only (no wrapSync), and it answers when the test lets it.
      const remote: Kek = {
        id: 'kms',
        provider: 'test',
        description: 'a remote KEK stand-in',
        wrap: async (dataKey, context) => {
          asked++;
          await wrapping;
          return local.wrap(dataKey, context);
        },
        unwrap: (wrapped, context) => local.unwrap(wrapped, context),
      };
      const remoteRing = new Keyring([remote], remote);
      const recorder = await start(`gw-kms-${backend.name}`, { keyring: remoteRing });
      const id = `kms-${backend.name}`;
      const rec = open(recorder, id);
      rec.message('toServer', 'received', call(1, 'remote'));
      const landed = rec.barrier()!;
      await waitFor(() => asked === 1, 'the KEK to be asked to wrap the data key');
      assert.equal(await store.getSession(id), undefined, 'nothing of the session is written before its data key is wrapped');
      release();
      await landed;
      const [row] = await store.dataKeys([id]);
      assert.equal(row?.kekId, 'kms');
      const key = await new Keyring([local], local).dataKey(row!);
      const events = await allEvents(store, id);
      assert.equal(openText(key, eventAad(id, 1, 'payload'), events[1]!.payload, 'event 1'), call(1, 'remote'));
      await rec.close('done');
      await recorder.close();
    });

    it('a data key the KEK cannot wrap fails the session closed, and the recorder goes on with the next one', async () => {
      let failing = true;
      const local = localKek('flaky', randomBytes(32));
      const flaky: Kek = {
        id: 'flaky',
        provider: 'test',
        description: 'a KEK that fails first',
        wrap: async (dataKey, context) => {
          if (failing) throw new Error('the KMS refused: AccessDeniedException');
          return local.wrap(dataKey, context);
        },
        unwrap: (wrapped, context) => local.unwrap(wrapped, context),
      };
      const recorder = await start(`gw-flaky-${backend.name}`, { keyring: new Keyring([flaky], flaky), probeMs: 50 });
      const rec = open(recorder, `flaky-a-${backend.name}`);
      await assert.rejects(rec.barrier()!, /unavailable|could not be wrapped/);
      assert.match(recorder.lastError?.message ?? '', /could not be wrapped by the current KEK \(recording\.encryption\.current\): the KMS refused/);
      assert.equal(await store.getSession(`flaky-a-${backend.name}`), undefined);
      failing = false;
      await waitFor(() => recorder.accepting, 'the recorder to accept sessions again');
      const next = open(recorder, `flaky-b-${backend.name}`);
      await next.barrier();
      await next.close('done');
      assert.equal((await store.dataKeys([`flaky-b-${backend.name}`]))[0]?.kekId, 'flaky');
      await recorder.close();
    });

    it('a session recovered after a crash is sealed under its own data key, with the counts its sealed verdicts state', async () => {
      const instanceId = `gw-crash-${backend.name}`;
      const crashed = await start(instanceId, { keyring });
      const id = `crash-${backend.name}`;
      const rec = open(crashed, id);
      rec.verdict({ stage: 'policy', action: 'answer', direction: 'toServer', reason: 'denied' });
      rec.verdict({ stage: 'mask', action: 'rewrite', direction: 'toClient', sensitive: true });
      await rec.barrier();
      // The same instance starts again (the first never closed its session): its start seals what was left open.
      const restarted = await start(instanceId, { keyring });
      const events = await allEvents(store, id);
      const last = events.at(-1)!;
      assert.equal(last.kind, 'close');
      const close = JSON.parse(openText(await storedKey(id), eventAad(id, last.seq, 'payload'), last.payload, 'close')) as Record<string, unknown>;
      assert.equal(close.status, 'cut-off');
      assert.equal(close.denials, 1);
      assert.equal(close.redactions, 1);
      let previous = sessionGenesis(id);
      for (const e of events) previous = eventHash(previous, e) === e.hash ? e.hash : assert.fail(`event ${e.seq} breaks the chain`);
      await restarted.close();
      await crashed.close();
    });

    it("review params are sealed under the session's data key, access reasons under their own", async () => {
      const recorder = await start(`gw-rv-${backend.name}`, { keyring });
      const id = `rv-${backend.name}`;
      const rec = open(recorder, id);
      await rec.barrier();
      const reviews = new Reviews({ store, instanceId: recorder.instanceId, log: quiet, dataKeyOf: (s) => recorder.dataKeyOf(s) });
      const params = JSON.stringify({ name: 'write_file', arguments: { path: markers.review } });
      const spec = (sessionId: string, digest: string) => ({
        sessionId,
        connection: 'files',
        identity: alice,
        method: 'tools/call',
        target: 'write_file',
        params,
        digest,
        rule: 'writes',
        approvers: ['leads'],
        approvals: 1,
        timeoutMs: 60_000,
        signal: new AbortController().signal,
      });
      const held = reviews.hold(spec(id, 'd'.repeat(64)));
      await waitFor(async () => (await store.getReview(held.id)) !== undefined, 'the review to be stored');
      const stored = (await store.getReview(held.id))!;
      assert.ok(isSealed(stored.params), `review params stored plain: ${stored.params}`);
      assert.equal(openText(await storedKey(id), reviewParamsAad(held.id), stored.params, 'params'), params);
      // A session with no data key here (not live on this gateway) cannot hold: its params would be stored plain.
      const orphan = await reviews.hold(spec('not-live-here', 'e'.repeat(64))).outcome;
      assert.equal(orphan.released, false);
      assert.match(orphan.released ? '' : orphan.message, /has no data key here/);
      await reviews.stop();

      const requests = accessRequests(recorder);
      const request = await requests.request(bob, 'files', 60_000, `to check ${markers.reason}`);
      assert.equal(request.reason, `to check ${markers.reason}`, 'the requester is answered with the reason as given');
      const row = (await store.getAccessRequest(request.id))!;
      assert.ok(isSealed(row.reason), `access reason stored plain: ${row.reason}`);
      assert.equal(openText(await storedKey(accessRequestOwner(request.id)), accessReasonAad(request.id), row.reason, 'reason'), `to check ${markers.reason}`);
      // A decision's ledger entry states the request too (the dump below finds no reason there either).
      assert.equal((await requests.deny(carol, request.id, 'no')).status, 'denied');
      requests.stop();
      await rec.close('done');
      await recorder.close();
    });

    it('an access request refused as a duplicate leaves no data key behind', async () => {
      const recorder = await start(`gw-dup-${backend.name}`, { keyring });
      const requests = accessRequests(recorder);
      const dataKeys = async () => (await store.dataKeyCounts()).find((c) => c.kekId === 'k1')?.count ?? 0;
      try {
        const first = await requests.request(bob, 'files', 60_000, 'to read the files once');
        const before = await dataKeys();
        await assert.rejects(requests.request(bob, 'files', 60_000, 'to read them again'), new RegExp(`your request ${first.id} for 'files' is still waiting`));
        assert.equal(await dataKeys(), before, 'the refused request left a data key (access:<id>) behind');
        assert.equal((await requests.deny(carol, first.id, 'no')).status, 'denied');
      } finally {
        requests.stop();
        await recorder.close();
      }
    });

    it("a dump of the database holds none of an encrypted session's words, and a plain session's it does", async () => {
      // The plain control, through a recorder without a keyring on the same store.
      const plain = await start(`gw-plain-${backend.name}`);
      const p = open(plain, `plain-${backend.name}`);
      p.message('toServer', 'received', call(1, control));
      await p.close('done');
      await plain.close();

      // What the tests above recorded is there to look for.
      assert.equal((await allEvents(store, `enc-${backend.name}`)).length, 6);
      assert.ok((await store.listAccessRequests({ limit: 10 })).length > 0);
      const text = await databaseDump(ts, backend.name);
      assert.ok(text.includes(control), 'the dump finds what a plain session said');
      for (const [where, marker] of Object.entries(markers)) assert.ok(!text.includes(marker), `the ${where} marker is in the dump`);
      if (backend.name === 'sqlite') {
        // And once the WAL is checkpointed into the file.
        await store.close();
        store = await ts.open();
        const after = await databaseDump(ts, backend.name);
        assert.ok(after.includes(control));
        for (const [where, marker] of Object.entries(markers)) assert.ok(!after.includes(marker), `the ${where} marker is in the checkpointed file`);
      }
    });
  });
}
