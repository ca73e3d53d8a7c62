import { join } from 'node:path';
import { encryptStore } from '../../src/recording/encrypt-store.js';
import { trustedKeys } from '../../src/recording/verify.js';
import { openStore } from '../../src/store/open.js';
import { writeLocalKek } from './encryption.js';
import type { TestGateway } from './gateway.js';
import { mcpHeaders, rawInitialize } from './raw-http.js';
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
