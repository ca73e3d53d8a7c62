import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CiphertextError } from '../../src/encryption/envelope.js';
import { readableStore } from '../../src/encryption/readable-store.js';
import { findGroup, listGroups } from '../../src/recording/session-groups.js';
import type { Store } from '../../src/store/store.js';
import { flipCiphertext, testKeyring, testSigner, writeRecordedSession } from '../helpers/encryption.js';
import { sqliteTestStore, storeSql, type TestStore } from '../helpers/stores.js';

/**
 * The grouped listing over pooled sessions this gateway cannot read for a reason other than an erasure: encrypted under
 * a KEK it does not have (none configured, or another id), a ciphertext altered (the opening's, or a later event's), a
 * data key's row deleted. Grouping reads payloads, so none of them can be grouped: each is listed apart, classified as
 * its own routes answer (no-kek: 503, altered: 500), with why and what to do; the readable sessions are grouped as
 * ever, and a listing is never cut short by one of them.
 */

describe('session groups beside pooled sessions unreadable here', () => {
  let ts: TestStore;
  let raw: Store;
  /** The store as a gateway with KEK k1 reads it. */
  let store: Store;
  const ids = { kept: '', otherKek: '', alteredOpening: '', alteredLater: '', keyDeleted: '' };
  const gapMs = 1500;

  before(async () => {
    ts = sqliteTestStore();
    raw = await ts.open();
    const k1 = testKeyring(['k1']);
    const { key: signer } = testSigner();
    const modern = async (subject: string, keyring = k1) => (await writeRecordedSession(raw, { keyring, signer, subject, edge: 'modern' })).session.id;
    ids.kept = await modern('kim');
    ids.otherKek = await modern('olga', testKeyring(['k2']));
    ids.alteredOpening = await modern('alf');
    ids.alteredLater = await modern('lou');
    ids.keyDeleted = await modern('del');
    const sql = storeSql(ts, 'sqlite');
    const flip = async (session: string, seq: number) => {
      const [e] = await raw.events(session, seq - 1, 1);
      await sql('UPDATE events SET payload = ? WHERE session_id = ? AND seq = ?', flipCiphertext(e!.payload), session, seq);
    };
    await flip(ids.alteredOpening, 0);
    // Its opening reads (it is attested as lou's): the request that would start its group does not.
    await flip(ids.alteredLater, 2);
    await sql('DELETE FROM data_keys WHERE owner = ?', ids.keyDeleted);
    store = readableStore(raw, k1);
  });
  after(async () => {
    await raw?.close();
    await ts?.destroy();
  });

  it('groups the readable session, and lists each unreadable one apart: why, which kind, and what to do', async () => {
    const { groups, erased, unreadable } = await listGroups(store, { limit: 50 }, gapMs);
    assert.deepEqual(
      groups.map((g) => [g.subject, g.sessions]),
      [['kim', [ids.kept]]],
    );
    assert.deepEqual(erased, []);
    const of = (id: string) => unreadable.find((s) => s.id === id)!;
    assert.deepEqual(
      unreadable.map((s) => [s.id, s.unreadableKind]),
      [
        [ids.keyDeleted, 'altered'],
        [ids.alteredLater, 'altered'],
        [ids.alteredOpening, 'altered'],
        [ids.otherKek, 'no-kek'],
      ],
      'newest first',
    );
    assert.match(of(ids.otherKek).unreadable, new RegExp(`^the recording of ${ids.otherKek} is encrypted under KEK 'k2', which this config does not have`));
    assert.match(
      of(ids.otherKek).unreadableFix,
      /^add the KEK it names to recording\.encryption\.keys, with the same key material as the gateway that recorded it/,
    );
    assert.match(of(ids.otherKek).unreadableFix, new RegExp(`\`portcullis sessions verify ${ids.otherKek}\` needs no key$`));
    assert.match(of(ids.alteredOpening).unreadable, new RegExp(`^session ${ids.alteredOpening} event 0's payload does not decrypt: it was altered`));
    assert.match(of(ids.alteredLater).unreadable, new RegExp(`^session ${ids.alteredLater} event 2's payload does not decrypt: it was altered`));
    assert.match(of(ids.keyDeleted).unreadable, /the store has no data key for it \(table data_keys\): the row was deleted outside Portcullis/);
    for (const id of [ids.alteredOpening, ids.alteredLater, ids.keyDeleted])
      assert.match(of(id).unreadableFix, new RegExp(`^\`portcullis sessions verify ${id}\` tells what was changed`));
    // Whose they are: by the opening where it reads (lou's is attested), else as the row says, owned by nobody.
    assert.deepEqual(
      [of(ids.alteredLater).owned, of(ids.alteredLater).subject, of(ids.otherKek).owned, of(ids.otherKek).subject],
      [true, 'lou', false, 'olga'],
    );
  });

  it('without any KEK, every encrypted session is listed apart as no-kek, and none is grouped', async () => {
    const { groups, unreadable } = await listGroups(readableStore(raw, undefined), { limit: 50 }, gapMs);
    assert.deepEqual(groups, []);
    const kept = unreadable.find((s) => s.id === ids.kept);
    assert.equal(kept?.unreadableKind, 'no-kek');
    assert.match(kept.unreadable, /encrypted under KEK 'k1', which this config does not have: add it to recording\.encryption\.keys/);
  });

  it('a narrower listing lists only those it names; a window that ends before them, none', async () => {
    const lou = await listGroups(store, { limit: 50, subject: 'lou' }, gapMs);
    assert.deepEqual([lou.groups, lou.unreadable.map((s) => s.id)], [[], [ids.alteredLater]]);
    const newest = (await raw.getSession(ids.keyDeleted))!;
    const later = await listGroups(store, { limit: 50, fromUs: newest.closedAtUs! + 1 }, gapMs);
    assert.deepEqual(later.unreadable, []);
    assert.equal((await listGroups(store, { limit: 1 }, gapMs)).unreadable.length, 1, 'at most the limit');
  });

  it("a group's lookup: the readable one is found; one of the session whose event is altered says so, as its events do", async () => {
    const { groups } = await listGroups(store, { limit: 50 }, gapMs);
    const found = await findGroup(store, groups[0]!.id, gapMs);
    assert.deepEqual(
      found?.sessions.map((s) => s.id),
      [ids.kept],
    );
    await assert.rejects(findGroup(store, `${ids.alteredLater}.2`, gapMs), CiphertextError);
  });
});
