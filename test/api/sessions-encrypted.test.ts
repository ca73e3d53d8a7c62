import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Keyring } from '../../src/encryption/keyring.js';
import { openStore } from '../../src/store/open.js';
import { eraseWrittenSession, flipCiphertext, testKeyring, testSigner, writeLocalKek, writeRecordedSession } from '../helpers/encryption.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sqliteTestStore, storeSql, type TestStore } from '../helpers/stores.js';

/**
 * /api/sessions over encrypted recordings this gateway has no KEK for: the sessions are listed by their rows (marked
 * unreadable, or erased with who, when and why), and what needs the payloads answers a clear error, not a 500.
 */

describe('/api/sessions, encrypted recordings without the KEK', () => {
  let ts: TestStore;
  let gw: TestGateway;
  const ids = { encrypted: '', erased: '', forged: '', modern: '', modernErased: '' };
  const erasedAtUs = 1_796_000_000_000_000;
  let signerPem = '';

  before(async () => {
    ts = sqliteTestStore();
    const store = await openStore(ts.url);
    try {
      const keyring = testKeyring(['k1']);
      const { key: signer } = testSigner();
      signerPem = signer.publicKeyPem;
      ids.encrypted = (await writeRecordedSession(store, { keyring, signer })).session.id;
      const erased = (await writeRecordedSession(store, { keyring, signer, subject: 'bob' })).session;
      ids.erased = erased.id;
      await eraseWrittenSession(store, erased, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs: erasedAtUs });
      // A key row nulled with SQL, naming an admin: no signed ledger entry vouches for it.
      ids.forged = (await writeRecordedSession(store, { keyring, signer, subject: 'carol' })).session.id;
      await store.eraseDataKeys([ids.forged], 'root (https://idp.example.com)', 'privacy request #9', erasedAtUs);
      // Modern sessions, whose requests form groups (<session>.<seq>).
      ids.modern = (await writeRecordedSession(store, { keyring, signer, edge: 'modern' })).session.id;
      const modernErased = (await writeRecordedSession(store, { keyring, signer, subject: 'bob', edge: 'modern' })).session;
      ids.modernErased = modernErased.id;
      await eraseWrittenSession(store, modernErased, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #8', erasedAtUs });
    } finally {
      await store.close();
    }
    // The gateway trusts the key that sealed these and signed the erasure, as each replica trusts the others' (config).
    gw = await startTestGateway({ store: ts.url, recording: { trustedKeys: [signerPem] }, connections: { everything: { stdio: everythingStdio() } } });
  });
  after(async () => {
    await gw?.stop();
    await ts?.destroy();
  });

  const get = async (path: string) => {
    const res = await fetch(new URL(path, gw.url), { headers: gw.apiAuth });
    return { status: res.status, text: await res.text() };
  };

  it('lists the sessions by their rows, marked unreadable or erased', async () => {
    const r = await get('/api/sessions');
    assert.equal(r.status, 200, r.text);
    const sessions = (JSON.parse(r.text) as { sessions: Array<Record<string, unknown>> }).sessions;
    const of = (id: string) => sessions.find((s) => s.id === id)!;
    assert.equal(of(ids.encrypted).subject, 'alice');
    assert.match(String(of(ids.encrypted).unreadable), /encrypted under KEK 'k1', which this config does not have/);
    assert.deepEqual(of(ids.erased).erased, { erasedAtUs, by: 'root (https://idp.example.com)', reason: 'privacy request #7', vouched: true });
    assert.deepEqual(of(ids.forged).erased, { erasedAtUs, by: 'root (https://idp.example.com)', reason: 'privacy request #9', vouched: false });
    const forged = JSON.parse((await get(`/api/sessions/${ids.forged}`)).text) as { session: { erased: { vouched: boolean } } };
    assert.equal(forged.session.erased.vouched, false, 'nothing vouches for it');
    const verified = JSON.parse((await get(`/api/sessions/${ids.forged}/verify`)).text) as { status: string };
    assert.equal(verified.status, 'failed', 'and verify fails it');
    const one = await get(`/api/sessions/${ids.encrypted}`);
    assert.equal(one.status, 200, one.text);
    assert.equal((JSON.parse(one.text) as { session: { status: string } }).session.status, 'closed');
  });

  it('events and export answer 503 naming the KEK and the config key; an erased session 410 with who, when, why', async () => {
    for (const what of ['events', 'export']) {
      const r = await get(`/api/sessions/${ids.encrypted}/${what}`);
      assert.equal(r.status, 503, r.text);
      assert.match(r.text, /encrypted under KEK 'k1', which this config does not have: add it to recording\.encryption\.keys/);
      assert.doesNotMatch(r.text, /marker-secret|\n\s+at /);
      const gone = await get(`/api/sessions/${ids.erased}/${what}`);
      assert.equal(gone.status, 410, gone.text);
      assert.match(gone.text, /was erased \(crypto-shredded\) at .* by root \(https:\/\/idp\.example\.com\): privacy request #7/);
    }
  });

  it('verify answers without the key: verified, and erased for the erased session', async () => {
    const r = JSON.parse((await get(`/api/sessions/${ids.encrypted}/verify`)).text) as { status: string; problems: unknown[]; notes: string[] };
    assert.equal(r.status, 'verified', JSON.stringify(r.problems));
    assert.ok(r.notes.some((n) => /were skipped/.test(n)));
    const gone = JSON.parse((await get(`/api/sessions/${ids.erased}/verify`)).text) as { erased: unknown };
    assert.deepEqual(gone.erased, { erasedAtUs, by: 'root (https://idp.example.com)', reason: 'privacy request #7' });
  });

  it('a group of an unreadable session: events and export say why (503 without the KEK, 410 erased); verify covers it with the whole session', async () => {
    for (const [id, status, why] of [
      [ids.modern, 503, /encrypted under KEK 'k1', which this config does not have/],
      [ids.modernErased, 410, /was erased \(crypto-shredded\) at .* by root .*: privacy request #8/],
    ] as const) {
      for (const what of ['', '/events', '/export']) {
        const r = await get(`/api/sessions/${id}.2${what}`);
        assert.equal(r.status, status, r.text);
        assert.match(r.text, why);
      }
    }
    for (const [id, status] of [
      [ids.modern, 'verified'],
      [ids.modernErased, 'erased'],
    ] as const) {
      const r = await get(`/api/sessions/${id}.2/verify`);
      assert.equal(r.status, 200, r.text);
      const v = JSON.parse(r.text) as { group: string; status: string; notes: string[]; sessions: Array<{ sessionId: string }> };
      assert.equal(v.status, status, r.text);
      assert.deepEqual(
        v.sessions.map((x) => x.sessionId),
        [id],
      );
      assert.match(v.notes[0]!, new RegExp(`the group cannot be told apart: its whole session ${id} was verified, which covers it`));
    }
  });

  it('the grouped listing (no KEK configured at all) lists the modern sessions apart: the erased one erased, the other unreadable with the fix', async () => {
    const r = await get('/api/sessions/groups');
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text) as {
      groups: unknown[];
      erased: Array<{ id: string; erased: unknown }>;
      unreadable: Array<{ id: string; subject: string; unreadable: string; unreadableKind: string; unreadableFix: string }>;
    };
    assert.deepEqual(body.groups, []);
    assert.deepEqual(
      body.erased.map((s) => [s.id, s.erased]),
      [[ids.modernErased, { erasedAtUs, by: 'root (https://idp.example.com)', reason: 'privacy request #8', vouched: true }]],
    );
    assert.deepEqual(
      body.unreadable.map((s) => [s.id, s.subject, s.unreadableKind]),
      [[ids.modern, 'alice', 'no-kek']],
    );
    assert.match(body.unreadable[0]!.unreadable, /encrypted under KEK 'k1', which this config does not have: add it to recording\.encryption\.keys/);
    assert.match(body.unreadable[0]!.unreadableFix, /^add the KEK it names to recording\.encryption\.keys/);
  });
});

describe('/api/sessions, a group of an unreadable session answers as its session does', () => {
  let ts: TestStore;
  let gw: TestGateway;
  let dir: string;
  const ids = { noKek: '', erased: '', altered: '', alteredLater: '', kept: '' };

  before(async () => {
    ts = sqliteTestStore();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-groups-enc-'));
    // The gateway has k1 (its key file), so an altered ciphertext is found out, not hidden behind a missing KEK.
    const { kek, ref } = writeLocalKek(join(dir, 'kek-1'), 'k1');
    const k1 = new Keyring([kek], kek);
    const { key: signer } = testSigner();
    const store = await openStore(ts.url);
    try {
      // Under k2, which the gateway does not have.
      ids.noKek = (await writeRecordedSession(store, { keyring: testKeyring(['k2']), signer, edge: 'modern' })).session.id;
      const erased = (await writeRecordedSession(store, { keyring: k1, signer, subject: 'bob', edge: 'modern' })).session;
      ids.erased = erased.id;
      await eraseWrittenSession(store, erased, {
        signer,
        by: 'root (https://idp.example.com)',
        reason: 'privacy request #8',
        erasedAtUs: 1_796_000_000_000_000,
      });
      ids.altered = (await writeRecordedSession(store, { keyring: k1, signer, subject: 'carol', edge: 'modern' })).session.id;
      const [opening] = await store.events(ids.altered, -1, 1);
      await storeSql(ts, 'sqlite')('UPDATE events SET payload = ? WHERE session_id = ? AND seq = 0', flipCiphertext(opening!.payload), ids.altered);
      // Its opening reads; its first request (seq 2) does not.
      ids.alteredLater = (await writeRecordedSession(store, { keyring: k1, signer, subject: 'dave', edge: 'modern' })).session.id;
      const [request] = await store.events(ids.alteredLater, 1, 1);
      await storeSql(ts, 'sqlite')('UPDATE events SET payload = ? WHERE session_id = ? AND seq = 2', flipCiphertext(request!.payload), ids.alteredLater);
      ids.kept = (await writeRecordedSession(store, { keyring: k1, signer, subject: 'erin', edge: 'modern' })).session.id;
    } finally {
      await store.close();
    }
    gw = await startTestGateway({
      store: ts.url,
      recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: ref }] }, trustedKeys: [signer.publicKeyPem] },
      connections: { everything: { stdio: everythingStdio() } },
    });
  });
  after(async () => {
    await gw?.stop();
    await ts?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const res = await fetch(new URL(path, gw.url), { headers: gw.apiAuth });
    return { status: res.status, text: await res.text() };
  };

  it("503 without the KEK, 410 erased, 500 altered: the status of its session's events and export, saying why", async () => {
    for (const [id, status, why] of [
      [ids.noKek, 503, /encrypted under KEK 'k2', which this config does not have/],
      [ids.erased, 410, /was erased \(crypto-shredded\) at .* by root .*: privacy request #8/],
      [ids.altered, 500, new RegExp(`session ${ids.altered} event 0's payload does not decrypt: it was altered`)],
    ] as const) {
      for (const what of ['/events', '/export']) {
        const session = await get(`/api/sessions/${id}${what}`);
        assert.equal(session.status, status, session.text);
        const group = await get(`/api/sessions/${id}.2${what}`);
        assert.equal(group.status, session.status, `the group's ${what} as its session's: ${group.text}`);
        assert.match(group.text, why);
      }
      const group = await get(`/api/sessions/${id}.2`);
      assert.equal(group.status, status, group.text);
      assert.match(group.text, why);
    }
  });

  it('the grouped listing groups the readable session and lists the others apart, each with the kind its own routes answer by', async () => {
    const r = await get('/api/sessions/groups');
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text) as {
      groups: Array<{ sessions: string[] }>;
      erased: Array<{ id: string }>;
      unreadable: Array<{ id: string; unreadable: string; unreadableKind: string; unreadableFix: string }>;
    };
    assert.deepEqual(
      body.groups.map((g) => g.sessions),
      [[ids.kept]],
    );
    assert.deepEqual(
      body.erased.map((s) => s.id),
      [ids.erased],
    );
    assert.deepEqual(
      body.unreadable.map((s) => [s.id, s.unreadableKind]),
      [
        [ids.alteredLater, 'altered'],
        [ids.altered, 'altered'],
        [ids.noKek, 'no-kek'],
      ],
    );
    const of = (id: string) => body.unreadable.find((s) => s.id === id)!;
    assert.match(of(ids.noKek).unreadable, /encrypted under KEK 'k2', which this config does not have/);
    assert.match(of(ids.alteredLater).unreadable, new RegExp(`session ${ids.alteredLater} event 2's payload does not decrypt: it was altered`));
    assert.match(of(ids.alteredLater).unreadableFix, new RegExp(`^\`portcullis sessions verify ${ids.alteredLater}\` tells what was changed`));
    // Its own routes answer as the listing classifies it: 500, altered.
    assert.equal((await get(`/api/sessions/${ids.alteredLater}/events`)).status, 500);
    assert.equal((await get(`/api/sessions/${ids.alteredLater}.2`)).status, 500);
  });
});
