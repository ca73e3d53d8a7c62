import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { accessReasonAad, accessRequestOwner, eventAad, reviewParamsAad, sealText } from '../../src/encryption/envelope.js';
import type { Kek } from '../../src/encryption/kek.js';
import { localKek, localKeyBytes } from '../../src/encryption/keks/local.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { readableStore } from '../../src/encryption/readable-store.js';
import { erasureBytes, eventHash, ledgerGenesis, ledgerHash, sealBytes, sessionGenesis } from '../../src/recording/chain.js';
import { keyIdOf, type SigningKey } from '../../src/recording/keys.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import type { Store } from '../../src/store/store.js';
import { type DataKeyRow, emptyBatch, type EventRow, type LedgerRow, openSessionRow, type SessionRow, type WriteBatch } from '../../src/store/types.js';

/**
 * Recording encryption in tests, without the recorder: a keyring of local KEKs (or their key files, for a config), a
 * store that seals what is written to it as the write path does (for the store contract suite), and whole sealed,
 * signed, encrypted sessions written straight into a store (for the read path, verify and tampering).
 */

/** A keyring of local KEKs with random keys; the first id is current unless `current` says. */
export function testKeyring(ids: string[] = ['k1'], current = ids[0]!): Keyring {
  const keks = ids.map((id) => localKek(id, randomBytes(32)));
  return new Keyring(keks, keks.find((k) => k.id === current)!);
}

/**
 * A local KEK's key file written at `path` (32 random bytes as base64, readable by its owner only): the KEK as a
 * gateway reads it under `id`, and the reference (`${file:…}`) a config's recording.encryption.keys names it by.
 */
export function writeLocalKek(path: string, id: string): { kek: Kek; ref: string } {
  const text = randomBytes(32).toString('base64');
  writeFileSync(path, `${text}\n`, { mode: 0o600 });
  return { kek: localKek(id, localKeyBytes(text)), ref: `\${file:${path}}` };
}

/** Data keys of `owners` under the keyring's current KEK, written straight into the store (work for a rotation). */
export async function seedDataKeys(store: Store, keyring: Keyring, owners: readonly string[]): Promise<void> {
  for (const owner of owners) await store.insertDataKey(dataKeyFor(keyring, owner).row);
}

/** A data key row for `owner` under the keyring's current KEK, and the key. */
export function dataKeyFor(keyring: Keyring, owner: string, createdAtUs = 1): { key: Buffer; row: DataKeyRow } {
  const { key, kekId, wrapped } = keyring.newDataKey(owner);
  if (typeof wrapped !== 'string') throw new Error('test keyrings wrap at once');
  return { key, row: { owner, kekId, wrapped, createdAtUs, erasedAtUs: null, erasedBy: null, eraseReason: null } };
}

/** An event with its payload and forwarded sealed under `key`. */
export function sealEvent(key: Buffer, e: EventRow): EventRow {
  return {
    ...e,
    payload: sealText(key, eventAad(e.sessionId, e.seq, 'payload'), e.payload),
    forwarded: e.forwarded === null ? null : sealText(key, eventAad(e.sessionId, e.seq, 'forwarded'), e.forwarded),
  };
}

/** A sealed value with one byte of its ciphertext flipped (nonce and tag left alone): altered, as tampering would. */
export function flipCiphertext(stored: string): string {
  const body = Buffer.from(stored.slice('pcx1:'.length), 'base64');
  body[14] = body[14]! ^ 0x01;
  return `pcx1:${body.toString('base64')}`;
}

/**
 * A store that writes as an encrypting gateway does (a data key per session, in the batch that opens it or, for a
 * session first seen later, in the batch of its first events; payloads, review params and access reasons sealed),
 * and reads through `readableStore`: the store contract holds through it exactly as without encryption.
 */
export function encryptingStore(store: Store, keyring: Keyring): Store {
  const keys = new Map<string, Buffer>();
  /** The batch as stored, and the keys it adds (remembered only once it is written). */
  const seal = (batch: WriteBatch): { sealed: WriteBatch; added: Map<string, Buffer> } => {
    const added = new Map<string, Buffer>();
    const dataKeys = [...batch.dataKeys];
    const keyOf = (owner: string) => {
      const known = keys.get(owner) ?? added.get(owner);
      if (known !== undefined) return known;
      const { key, row } = dataKeyFor(keyring, owner);
      added.set(owner, key);
      dataKeys.push(row);
      return key;
    };
    for (const s of batch.sessionsOpened) keyOf(s.id);
    const events = batch.events.map((e) => sealEvent(keyOf(e.sessionId), e));
    return { sealed: { ...batch, events, dataKeys }, added };
  };
  const remember = (added: Map<string, Buffer>) => {
    for (const [owner, key] of added) keys.set(owner, key);
  };
  const ownKey = async (owner: string): Promise<Buffer> => {
    const known = keys.get(owner);
    if (known !== undefined) return known;
    const { key, row } = dataKeyFor(keyring, owner);
    await store.insertDataKey(row);
    keys.set(owner, key);
    return key;
  };
  const writeSync = store.writeSync;
  const writing: Store = {
    ...store,
    async write(batch) {
      const { sealed, added } = seal(batch);
      await store.write(sealed);
      remember(added);
    },
    ...(writeSync === undefined
      ? {}
      : {
          writeSync: (batch: WriteBatch) => {
            const { sealed, added } = seal(batch);
            writeSync(sealed);
            remember(added);
          },
        }),
    async insertReview(row) {
      const key = await ownKey(row.sessionId);
      await store.insertReview({ ...row, params: sealText(key, reviewParamsAad(row.id), row.params) });
    },
    async insertAccessRequest(row, dataKey) {
      // Sealed already, by a caller that brings the key (identity/access-requests.ts).
      if (dataKey !== undefined) return store.insertAccessRequest(row, dataKey);
      const owner = accessRequestOwner(row.id);
      const known = keys.get(owner);
      const made = known === undefined ? dataKeyFor(keyring, owner) : undefined;
      const key = known ?? made!.key;
      const inserted = await store.insertAccessRequest({ ...row, reason: sealText(key, accessReasonAad(row.id), row.reason) }, made?.row);
      if (inserted && made !== undefined) keys.set(owner, made.key);
      return inserted;
    },
  };
  return readableStore(writing, keyring);
}

/** An Ed25519 signing key for seals, and the trusted-keys map that verifies them. */
export function testSigner(): { key: SigningKey; trusted: Map<string, string> } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const key: SigningKey = { keyId: keyIdOf(publicKey), publicKeyPem, sign: (data) => sign(null, data, privateKey).toString('base64') };
  return { key, trusted: new Map([[key.keyId, publicKeyPem]]) };
}

let written = 0;

export interface WrittenSession {
  session: SessionRow;
  /** The events as recorded, before encryption (what a readable store reads back). */
  plain: EventRow[];
  /** The data key, when the session is encrypted. */
  key?: Buffer;
}

/**
 * A whole session written straight into the store as a gateway records one: its opening, negotiated, message and close
 * events hash-chained over their stored form (sealed under a new data key when a keyring is given), its seal signed,
 * its ledger rows (an instance of its own, so the ledger verifies) and its data key in the batch that opens it.
 */
export async function writeRecordedSession(
  store: Store,
  o: { keyring?: Keyring; signer: SigningKey; messages?: string[]; subject?: string; id?: string; edge?: string; connection?: string },
): Promise<WrittenSession> {
  written++;
  const id = o.id ?? `enc-${written}-${randomBytes(4).toString('hex')}`;
  const openedAtUs = 1_795_000_000_000_000 + written * 1_000_000;
  const base = openSessionRow({
    id,
    instanceId: `gw-enc-${id}`,
    connection: o.connection ?? 'everything',
    subject: o.subject ?? 'alice',
    openedAtUs,
    ...(o.edge === undefined ? {} : { edge: o.edge }),
  });
  const negotiated = { clientInfo: { name: 'enc-client', version: '1' }, serverInfo: { name: 'everything', version: '2' }, protocolVersion: '2025-11-25' };
  const messages = o.messages ?? [
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"marker-secret-1"}}}',
    '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Echo: marker-secret-1"}]}}',
  ];
  const plain: EventRow[] = [];
  const add = (kind: EventRow['kind'], payload: string, more: Partial<EventRow> = {}) => {
    const seq = plain.length;
    plain.push({
      sessionId: id,
      seq,
      timeUs: openedAtUs + seq,
      monoUs: seq,
      kind,
      direction: null,
      boundary: null,
      payload,
      forwarded: null,
      hash: '',
      ...more,
    });
  };
  add('open', JSON.stringify(openingDetails(base)));
  add('negotiated', JSON.stringify(negotiated));
  messages.forEach((m, i) =>
    add('message', m, { direction: i % 2 === 0 ? 'toServer' : 'toClient', boundary: 'relayed', forwarded: m.replace('"id":1', '"id":101') }),
  );
  const closedAtUs = openedAtUs + plain.length;
  add('close', JSON.stringify({ status: 'closed', reason: 'client ended the session', denials: 0, redactions: 0 }), { timeUs: closedAtUs });
  const data = o.keyring === undefined ? undefined : dataKeyFor(o.keyring, id);
  let previous = sessionGenesis(id);
  const stored = plain.map((e) => {
    const s = data === undefined ? e : sealEvent(data.key, e);
    const hash = eventHash(previous, s);
    previous = hash;
    e.hash = hash;
    return { ...s, hash };
  });
  const sealFields = {
    status: 'closed' as const,
    closedAtUs,
    closeReason: 'client ended the session',
    eventCount: stored.length,
    lastHash: previous,
    sealKeyId: o.signer.keyId,
    denials: 0,
    redactions: 0,
  };
  const seal = o.signer.sign(sealBytes({ sessionId: id, eventCount: stored.length, lastHash: previous, status: 'closed', closedAtUs }));
  const ledger: LedgerRow[] = [];
  let ledgerPrevious = ledgerGenesis(base.instanceId);
  const entry = (kind: LedgerRow['kind'], detail: unknown) => {
    const row = { instanceId: base.instanceId, seq: ledger.length, timeUs: openedAtUs + ledger.length, kind, sessionId: id, detail: JSON.stringify(detail) };
    ledgerPrevious = ledgerHash(ledgerPrevious, row);
    ledger.push({ ...row, hash: ledgerPrevious });
  };
  entry('opened', { openedAtUs });
  entry('sealed', { seal, eventCount: stored.length, lastHash: previous, sealKeyId: o.signer.keyId, status: 'closed' });
  await store.write({
    ...emptyBatch(),
    sessionsOpened: [base],
    events: stored,
    negotiated: [{ id, ...negotiated }],
    sealed: [{ id, ...sealFields, seal }],
    ledger,
    dataKeys: data === undefined ? [] : [data.row],
  });
  const session = (await store.getSession(id))!;
  return { session, plain, ...(data === undefined ? {} : { key: data.key }) };
}

/**
 * Erases a session written by writeRecordedSession as `portcullis sessions erase` does: the `erased` entry verify
 * requires, signed by `signer`, appended to the ledger (the session's own test instance's chain), then its data key
 * destroyed (unless `keyToo` is false: an erasure cut short between the two).
 */
export async function eraseWrittenSession(
  store: Store,
  session: SessionRow,
  o: { signer: SigningKey; by: string; reason: string; erasedAtUs: number; keyToo?: boolean },
): Promise<void> {
  const { by, reason, erasedAtUs } = o;
  const head = await store.ledgerHead(session.instanceId);
  const signature = o.signer.sign(erasureBytes({ sessionId: session.id, by, reason, erasedAtUs }));
  const row = {
    instanceId: session.instanceId,
    seq: (head?.seq ?? -1) + 1,
    timeUs: erasedAtUs,
    kind: 'erased' as const,
    sessionId: session.id,
    detail: JSON.stringify({ by, reason, erasedAtUs, subject: session.subject, connection: session.connection, keyId: o.signer.keyId, signature }),
  };
  await store.write({ ...emptyBatch(), ledger: [{ ...row, hash: ledgerHash(head?.hash ?? ledgerGenesis(session.instanceId), row) }] });
  if (o.keyToo === false) return;
  const erased = await store.eraseDataKeys([session.id], by, reason, erasedAtUs);
  if (erased.length !== 1) throw new Error(`the data key of ${session.id} was not erased (none, or erased before)`);
}
