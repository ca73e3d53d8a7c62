import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readableStore } from '../../src/encryption/readable-store.js';
import { findGroup, listGroups, type ListedGroup } from '../../src/recording/session-groups.js';
import type { Store } from '../../src/store/store.js';
import { eraseWrittenSession, testKeyring, testSigner, writeRecordedSession } from '../helpers/encryption.js';
import { sqliteTestStore, type TestStore } from '../helpers/stores.js';

/**
 * The session views over erased recordings: an erased modern session's exchanges cannot be grouped (grouping reads
 * payloads), so a listing names it apart, and each group of its principal and connection within the idle gap of it
 * says it may be partly erased; groups further away, and other principals', say nothing.
 */

describe('session groups near an erased pooled session', () => {
  let ts: TestStore;
  let raw: Store;
  let store: Store;
  /** alice's pooled sessions, a second apart (as written), the second erased; bob's between her third and fourth. */
  const alice: string[] = [];
  let bob = '';
  /** Each session's exchanges a group of their own (the sessions are a second apart), and an erased one near two. */
  const gapMs = 1500;
  const by = 'root (https://idp.example.com)';

  before(async () => {
    ts = sqliteTestStore();
    raw = await ts.open();
    const keyring = testKeyring(['k1']);
    const { key: signer } = testSigner();
    // A request answered (the id is the client's both ways), so that a pause after it opens another idle group.
    const messages = [
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m"}}}',
      '{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"Echo: m"}]}}',
    ];
    const modern = (subject: string) => writeRecordedSession(raw, { keyring, signer, subject, edge: 'modern', messages });
    for (let i = 0; i < 3; i++) alice.push((await modern('alice')).session.id);
    bob = (await modern('bob')).session.id;
    alice.push((await modern('alice')).session.id);
    const erased = (await raw.getSession(alice[1]!))!;
    await eraseWrittenSession(raw, erased, { signer, by, reason: 'privacy request 12', erasedAtUs: erased.closedAtUs! + 1 });
    store = readableStore(raw, keyring);
  });
  after(async () => {
    await raw?.close();
    await ts?.destroy();
  });

  /** The group a session's exchanges form (each session here holds one). */
  const groupOf = (groups: ListedGroup[], session: string) => {
    const g = groups.filter((x) => x.sessions.includes(session));
    assert.equal(g.length, 1, `one group of ${session}`);
    return g[0]!;
  };

  it('lists the erased session apart, with who erased it, when and why, and no group of it', async () => {
    const { groups, erased } = await listGroups(store, { limit: 50 }, gapMs);
    assert.deepEqual(
      erased.map((s) => [s.id, s.subject, s.erased.by, s.erased.reason]),
      [[alice[1], 'alice', by, 'privacy request 12']],
    );
    assert.ok(!groups.some((g) => g.sessions.includes(alice[1]!)), 'its exchanges cannot be read, so they are in no group');
    assert.equal(groups.length, 4, "alice's three readable sessions' groups and bob's");
  });

  it('flags the groups of its principal within the idle gap of it, and no other', async () => {
    const { groups } = await listGroups(store, { limit: 50 }, gapMs);
    const near = (session: string) => groupOf(groups, session).erasedNearby.map((e) => [e.session, e.erased.reason]);
    assert.deepEqual(near(alice[0]!), [[alice[1], 'privacy request 12']], 'the group a second before it');
    assert.deepEqual(near(alice[2]!), [[alice[1], 'privacy request 12']], 'the group a second after it');
    assert.deepEqual(near(alice[3]!), [], 'three seconds after it: further than the idle gap');
    assert.deepEqual(near(bob), [], "bob's group, a second from it, is another principal's");
  });

  it("a group's lookup says the same", async () => {
    const { groups } = await listGroups(store, { limit: 50 }, gapMs);
    const found = await findGroup(store, groupOf(groups, alice[2]!).id, gapMs);
    assert.deepEqual(
      found?.erasedNearby.map((e) => e.session),
      [alice[1]],
    );
    assert.deepEqual((await findGroup(store, groupOf(groups, alice[3]!).id, gapMs))?.erasedNearby, []);
  });

  it('a listing by time shows the erased session only when it falls in the window', async () => {
    const erasedAt = (await raw.getSession(alice[1]!))!;
    const after = await listGroups(store, { limit: 50, fromUs: erasedAt.closedAtUs! + 1 }, gapMs);
    assert.deepEqual(after.erased, [], 'it ended before the window');
    const within = await listGroups(store, { limit: 50, fromUs: erasedAt.openedAtUs, toUs: erasedAt.closedAtUs! }, gapMs);
    assert.deepEqual(
      within.erased.map((s) => s.id),
      [alice[1]],
    );
  });
});
