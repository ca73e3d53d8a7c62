import assert from 'node:assert/strict';
import { join } from 'node:path';
import { encryptStore } from '../../src/recording/encrypt-store.js';
import { trustedKeys } from '../../src/recording/verify.js';
import { openStore } from '../../src/store/open.js';
import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import { callApi } from './api.js';
import { writeLocalKek } from './encryption.js';
import type { TestGateway } from './gateway.js';
import { mcpHeaders, rawInitialize } from './raw-http.js';
import { storeSql } from './stores.js';
import { waitFor } from './wait.js';

/**
 * A test gateway whose recordings are encrypted, as the erasure tests set it up: its recording.encryption (one local
 * KEK), a session recorded and sealed through it, and what its recorder wrote plain encrypted as `store encrypt` does.
 */

/** recording.encryption with one local KEK, k1, its key file (kek-1) written in `dir`. */
export function localEncryption(dir: string): { current: string; keys: Array<{ id: string; local: string }> } {
  const { ref } = writeLocalKek(join(dir, 'kek-1'), 'k1');
  return { current: 'k1', keys: [{ id: 'k1', local: ref }] };
}

/** A session of the token's holder on `connection` over raw HTTP, ended by the client: its id, once it is sealed. */
export async function sealedSession(gw: TestGateway, connection: string, token: string): Promise<string> {
  const auth = { authorization: `Bearer ${token}` };
  const id = await rawInitialize(gw.mcp(connection), auth);
  await fetch(gw.mcp(connection), { method: 'DELETE', headers: { ...mcpHeaders, ...auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' } });
  await waitFor(async () => (await gw.gateway.recorder!.store.getSession(id))?.status === 'closed', `session ${id} to be sealed`);
  return id;
}

/**
 * Encrypts the sessions the gateway's recorder wrote plain (before it encrypted as it writes) with `store encrypt`'s
 * library, on a second connection to its SQLite store; once the recorder encrypts as it writes, that finds nothing.
 */
export async function encryptRecordings(gw: TestGateway): Promise<void> {
  const recorder = gw.gateway.recorder!;
  const side = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`);
  try {
    await encryptStore({ store: side, keyring: recorder.keyring!, key: recorder.key, trusted: await trustedKeys([recorder.key]) });
  } finally {
    await side.close();
  }
}

/** Erases `sessions` through the gateway's API as the holder of `adminToken` (an admin), and checks it erased them all. */
export async function eraseThroughApi(gw: TestGateway, adminToken: string, sessions: string[], reason: string): Promise<void> {
  const r = await callApi<{ erased: Array<{ session: string }> }>(gw.url, adminToken, 'POST', '/api/sessions/erase', { sessions, reason });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.erased.map((e) => e.session).sort(), [...sessions].sort());
}

/**
 * Destroys a session's data key with SQL, behind the gateway's back: its row says it was erased by whom and when
 * `erased` (a session erased through the API) was, with `reason`; only the signed ledger entry is missing.
 */
export async function eraseWithSqlLike(gw: TestGateway, adminToken: string, erased: string, session: string, reason: string): Promise<void> {
  const { body } = await callApi<{ session: { erased: ErasureFacts } }>(gw.url, adminToken, 'GET', `/api/sessions/${encodeURIComponent(erased)}`);
  await storeSql({ url: `sqlite:${join(gw.dataDir, 'portcullis.db')}` }, 'sqlite')(
    'UPDATE data_keys SET wrapped = NULL, erased_at_us = ?, erased_by = ?, erase_reason = ? WHERE owner = ? AND wrapped IS NOT NULL',
    body.session.erased.erasedAtUs,
    body.session.erased.by,
    reason,
    session,
  );
}
