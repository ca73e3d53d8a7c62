import { hostname } from 'node:os';
import { accessReasonAad, accessRequestOwner, eventAad, isSealed, reviewParamsAad, sealText } from '../encryption/envelope.js';
import type { Keyring } from '../encryption/keyring.js';
import type { EncryptedRewrite } from '../store/encryption-upkeep.js';
import type { Store } from '../store/store.js';
import type { DataKeyRow, EventRow, LedgerRow, SessionRow } from '../store/types.js';
import { eventHash, ledgerGenesis, ledgerHash, sealBytes, sessionGenesis } from './chain.js';
import type { SigningKey } from './keys.js';
import { nowUs } from './time.js';
import { type TrustedKeys, verifySession } from './verify.js';

/**
 * `portcullis store encrypt`: migrates a store recorded plain to encrypted recordings, in place, session by session.
 *
 * Each sealed session without a data key gets one; every event's payload and forwarded text is sealed under it, the
 * chain is hashed again over the sealed form, and the seal is signed again (with this gateway's signing key), all in
 * one transaction with an `encrypted` entry in the command's own ledger chain that states the seal before and after.
 * A session is migrated only if it verifies as it is: hashing a tampered recording again would launder the tampering.
 * Open sessions are left (their gateway still writes them; run it again once they have ended). Sessions that have a
 * data key are done, so a run that stopped part way is resumed by running it again. Then access requests' reasons.
 */

export interface EncryptStoreReport {
  sessions: string[];
  /** Sealed sessions that do not verify: left plain, with the first problem. */
  refused: Array<{ session: string; why: string }>;
  /** Open sessions left plain. */
  open: string[];
  /** Sessions that changed while being migrated (another run did them): left to the next run. */
  raced: string[];
  accessRequests: number;
}

export interface EncryptStoreOptions {
  store: Store;
  keyring: Keyring;
  key: SigningKey;
  trusted: TrustedKeys;
  /** The ledger chain the `encrypted` entries go into; default `store-encrypt-<hostname>`. */
  instanceId?: string;
  /** Told of each session as it is done (the CLI prints it). */
  progress?: (line: string) => void;
}

export const encryptLedgerInstance = (): string =>
  `store-encrypt-${hostname()
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, 48)}`;

async function allEvents(store: Store, sessionId: string): Promise<EventRow[]> {
  const out: EventRow[] = [];
  for (let after = -1; ; ) {
    const page = await store.events(sessionId, after, 5000);
    out.push(...page);
    if (page.length < 5000) return out;
    after = page.at(-1)!.seq;
  }
}

/** A data key row for `owner`, its wrapping awaited (a KMS key wraps remotely). */
async function dataKeyFor(keyring: Keyring, owner: string): Promise<{ key: Buffer; row: DataKeyRow }> {
  const made = keyring.newDataKey(owner);
  const wrapped = await made.wrapped;
  return { key: made.key, row: { owner, kekId: made.kekId, wrapped, createdAtUs: nowUs(), erasedAtUs: null, erasedBy: null, eraseReason: null } };
}

export async function encryptStore(o: EncryptStoreOptions): Promise<EncryptStoreReport> {
  const { store, keyring, key } = o;
  const instanceId = o.instanceId ?? encryptLedgerInstance();
  await store.registerKey({ keyId: key.keyId, publicKey: key.publicKeyPem, instanceId, createdAtUs: nowUs() });
  const head = await store.ledgerHead(instanceId);
  let ledger = head === undefined ? { seq: -1, hash: ledgerGenesis(instanceId) } : { seq: head.seq, hash: head.hash };
  const report: EncryptStoreReport = { sessions: [], refused: [], open: await store.plainOpenSessions(), raced: [], accessRequests: 0 };

  for (let after = ''; ; ) {
    const page = await store.plainSealedSessions(after, 100);
    for (const session of page) {
      after = session.id;
      const verified = await verifySession(store, session.id, o.trusted);
      if (verified.status !== 'verified') {
        report.refused.push({ session: session.id, why: verified.problems[0]?.message ?? verified.notes[0] ?? verified.status });
        continue;
      }
      const rewrite = await encryptedForm(store, keyring, key, session, instanceId, ledger);
      if (await store.rewriteSessionEncrypted(rewrite)) {
        ledger = { seq: rewrite.ledger.seq, hash: rewrite.ledger.hash };
        keyring.forget(session.id);
        report.sessions.push(session.id);
        o.progress?.(`encrypted ${session.id} (${rewrite.events.length} events)`);
      } else report.raced.push(session.id);
    }
    if (page.length < 100) break;
  }

  for (let after = ''; ; ) {
    const page = await store.plainAccessRequests(after, 100);
    for (const request of page) {
      after = request.id;
      if (isSealed(request.reason)) continue;
      const { key: dataKey, row } = await dataKeyFor(keyring, accessRequestOwner(request.id));
      const sealed = sealText(dataKey, accessReasonAad(request.id), request.reason);
      if (await store.encryptAccessReason(row, request.id, request.reason, sealed)) report.accessRequests++;
      keyring.forget(row.owner);
    }
    if (page.length < 100) break;
  }
  return report;
}

/** One session's encrypted form: its events sealed and hashed again, its seal signed again, its ledger entry. */
async function encryptedForm(
  store: Store,
  keyring: Keyring,
  key: SigningKey,
  session: SessionRow,
  instanceId: string,
  ledger: { seq: number; hash: string },
): Promise<EncryptedRewrite> {
  const id = session.id;
  const { key: dataKey, row } = await dataKeyFor(keyring, id);
  const seal = (aad: string, text: string) => (isSealed(text) ? text : sealText(dataKey, aad, text));
  let previous = sessionGenesis(id);
  const events: EncryptedRewrite['events'] = [];
  for (const e of await allEvents(store, id)) {
    const payload = seal(eventAad(id, e.seq, 'payload'), e.payload);
    const forwarded = e.forwarded === null ? null : seal(eventAad(id, e.seq, 'forwarded'), e.forwarded);
    const hash = eventHash(previous, { ...e, payload, forwarded });
    events.push({ seq: e.seq, oldHash: e.hash, payload, forwarded, hash });
    previous = hash;
  }
  const closedAtUs = session.closedAtUs!;
  const signature = key.sign(sealBytes({ sessionId: id, eventCount: events.length, lastHash: previous, status: session.status, closedAtUs }));
  const reviews = (await store.reviewParamsOf(id)).map((r) => ({ id: r.id, oldParams: r.params, params: seal(reviewParamsAad(r.id), r.params) }));
  const detail = {
    from: { eventCount: session.eventCount, lastHash: session.lastHash, seal: session.seal, sealKeyId: session.sealKeyId },
    to: { eventCount: events.length, lastHash: previous, seal: signature, sealKeyId: key.keyId },
    kekId: row.kekId,
    subject: session.subject,
    connection: session.connection,
  };
  const entry: LedgerRow = { instanceId, seq: ledger.seq + 1, timeUs: nowUs(), kind: 'encrypted', sessionId: id, detail: JSON.stringify(detail), hash: '' };
  entry.hash = ledgerHash(ledger.hash, entry);
  return {
    sessionId: id,
    dataKey: row,
    events,
    oldLastHash: session.lastHash!,
    lastHash: previous,
    seal: signature,
    sealKeyId: key.keyId,
    reviews,
    ledger: entry,
  };
}
