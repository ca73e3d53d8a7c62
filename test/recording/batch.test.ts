import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Item, selectBatch } from '../../src/recording/batch.js';
import { Commit } from '../../src/recording/commit.js';
import { SessionChain } from '../../src/recording/session-chain.js';
import type { SessionRow } from '../../src/store/types.js';

/**
 * Which queued items the next batch takes: a chain in flight waits, a chain is never split between batches,
 * and the ledger (open, seal, tombstone) keeps its order across sessions.
 */

const row = { id: 'x' } as SessionRow;
const open = (chain: SessionChain): Item => ({ type: 'open', chain, row });
const event = (chain: SessionChain, payload = '{}'): Item => ({
  type: 'event',
  chain,
  timeUs: 0,
  monoUs: 0,
  kind: 'message',
  direction: 'toServer',
  boundary: 'received',
  payload,
  forwarded: null,
});
const seal = (chain: SessionChain): Item => ({ type: 'seal', chain, status: 'closed', closedAtUs: 0, reason: 'r', denials: 0, redactions: 0 });
const recoverySeal = (chain: SessionChain): Item => {
  chain.recovering = true;
  return seal(chain);
};
const tombstone = (): Item => ({ type: 'tombstone', session: row, reason: 'r', deletedAtUs: 0, commit: new Commit() });

describe('selectBatch', () => {
  it('takes everything when nothing is in flight', () => {
    const a = new SessionChain('a');
    const b = new SessionChain('b');
    const q = [open(a), event(a), open(b), event(b), seal(a), tombstone()];
    const { taken, rest } = selectBatch(q, false);
    assert.deepEqual(taken, q);
    assert.deepEqual(rest, []);
  });

  it('leaves a chain whose earlier batch is in flight, and takes the others', () => {
    const a = new SessionChain('a');
    const b = new SessionChain('b');
    a.inFlight = true;
    const q = [event(a), event(b), event(a), event(b)];
    const { taken, rest } = selectBatch(q, false);
    assert.deepEqual(taken, [q[1], q[3]]);
    assert.deepEqual(rest, [q[0], q[2]]);
  });

  it('keeps the ledger in order: nothing that writes the ledger passes one that waits', () => {
    const a = new SessionChain('a');
    const b = new SessionChain('b');
    const c = new SessionChain('c');
    a.inFlight = true;
    const q = [seal(a), open(b), event(b), event(c), tombstone()];
    const { taken, rest } = selectBatch(q, false);
    // a's seal waits, so b's open (a later ledger row) and the tombstone wait; b waits whole; c goes.
    assert.deepEqual(taken, [q[3]]);
    assert.deepEqual(rest, [q[0], q[1], q[2], q[4]]);
  });

  it('never splits a chain: a chain whose later item must wait keeps all its items back', () => {
    const a = new SessionChain('a');
    const b = new SessionChain('b');
    b.inFlight = true;
    const q = [event(a), seal(b), seal(a)];
    const { taken, rest } = selectBatch(q, false);
    assert.deepEqual(taken, []);
    assert.deepEqual(rest, q);
  });

  it('while a ledger batch is in flight, takes only items that write no ledger row', () => {
    const a = new SessionChain('a');
    const b = new SessionChain('b');
    const q = [event(a), open(b), event(b), tombstone()];
    const { taken, rest } = selectBatch(q, true);
    assert.deepEqual(taken, [q[0]]);
    assert.deepEqual(rest, [q[1], q[2], q[3]]);
  });

  it('writes a recovery seal alone, first once the ledger is free; it holds nothing back meanwhile', () => {
    const a = new SessionChain('a');
    const b = new SessionChain('b');
    const r = new SessionChain('r');
    const q = [open(a), event(b), recoverySeal(r), seal(a), open(b)];
    const first = selectBatch(q, false);
    assert.deepEqual(first.taken, [q[2]]);
    assert.deepEqual(first.rest, [q[0], q[1], q[3], q[4]]);
    // While the ledger is busy it waits, and the rest goes as it would without it.
    const busy = [event(a), recoverySeal(r), event(b), open(b)];
    const around = selectBatch(busy, true);
    assert.deepEqual(around.taken, [busy[0]]);
    assert.deepEqual(around.rest, [busy[1], busy[2], busy[3]]);
    // Once it has gone, a chain whose ledger items were on both sides of it goes whole.
    assert.deepEqual(selectBatch(first.rest, false).taken, first.rest);
  });
});
