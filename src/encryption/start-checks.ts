import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ClusterStore, MemberKeks } from '../store/cluster.js';
import type { DataKeyStore } from '../store/data-keys.js';
import type { KekCheckRow } from '../store/types.js';
import { type Kek, WrappedKeyError } from './kek.js';
import type { Keyring } from './keyring.js';
import { type EncryptionConfig, keyringFromConfig } from './keyring-from-config.js';

/**
 * What the gateway checks about recording encryption before it records anything: that each KEK is the key the store
 * knows by its id (else data keys wrapped under one key would be unwrapped with another, and fail only when read),
 * and that the live replicas sharing the store can read each other's recordings. Without recording.encryption, it
 * says once that recordings are plain.
 */

export const plainRecordingWarning =
  'recordings are stored plain (no recording.encryption): whoever can read the store, or a backup of it, reads every message; configure a KEK (docs/recording.md, Keys and rotation)';

/** A KEK whose id the store knows with other key material behind it. */
export class KekMismatchError extends Error {
  constructor(kek: Kek, check: KekCheckRow) {
    super(
      `KEK '${kek.id}' is not the key this store knows by that name: the check the store recorded for '${kek.id}' ` +
        `(a ${check.provider} key, on ${new Date(check.createdAtUs / 1000).toISOString()}) does not unwrap under ${kek.description}. ` +
        `Configure the key the store knows as '${kek.id}' in recording.encryption.keys, or give this key a new id`,
    );
    this.name = 'KekMismatchError';
  }
}

/** Replicas whose KEKs could not read each other's recordings. */
export class ReplicaKeksError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `this replica's recording.encryption is incompatible with live replicas on this store: ${problems.join('; ')}. ` +
        'Change keys one step at a time on every replica: add a KEK as non-current, then make it current, then rotate (docs/recording.md, Keys and rotation)',
    );
    this.name = 'ReplicaKeksError';
  }
}

/** What a KEK check wraps, and the context it is wrapped under (never a data key's owner). */
const checkValue = createHash('sha256').update('portcullis KEK check, version 1').digest();
export const kekCheckContext = 'portcullis-kek-check';

/** Whether `kek` unwraps the store's check of its id; a KMS that cannot be reached throws its own error. */
export async function kekMatches(kek: Kek, check: KekCheckRow): Promise<boolean> {
  try {
    return (await kek.unwrap(check.check, kekCheckContext)).equals(checkValue);
  } catch (err) {
    if (err instanceof WrappedKeyError) return false;
    throw err;
  }
}

/**
 * Checks every KEK of the keyring against the store's check of its id (KekMismatchError when one does not unwrap it),
 * and records a check for each id the store does not know yet. Returns the ids recorded now.
 */
export async function checkKeks(store: DataKeyStore, keyring: Keyring, nowUs: number): Promise<string[]> {
  const checks = new Map((await store.kekChecks()).map((c) => [c.kekId, c]));
  const added: string[] = [];
  for (const kek of keyring.keks) {
    let check = checks.get(kek.id);
    if (check === undefined) {
      const row: KekCheckRow = { kekId: kek.id, provider: kek.provider, check: await kek.wrap(checkValue, kekCheckContext), createdAtUs: nowUs };
      if (await store.insertKekCheck(row)) {
        added.push(kek.id);
        continue;
      }
      // Another gateway recorded one meanwhile: this key must be the one it has.
      check = (await store.kekChecks()).find((c) => c.kekId === kek.id)!;
    }
    if (!(await kekMatches(kek, check))) throw new KekMismatchError(kek, check);
  }
  return added;
}

/** What a replica says about its KEKs in the membership. */
export function memberKeksOf(keyring: Keyring | undefined): MemberKeks {
  return keyring === undefined ? { current: null, ids: [] } : { current: keyring.current.id, ids: keyring.ids };
}

/** Why this replica (`mine`) and live replica `id` (`theirs`) cannot share the store, or undefined when they can. */
export function keksIncompatibility(mine: MemberKeks, id: string, theirs: MemberKeks): string | undefined {
  if (mine.current === null && theirs.current === null) return undefined;
  if (mine.current === null) return `replica '${id}' encrypts recordings (current KEK '${theirs.current}') and this one has no recording.encryption`;
  if (theirs.current === null) return `replica '${id}' records plain (no recording.encryption) and this one encrypts (current KEK '${mine.current}')`;
  if (!mine.ids.includes(theirs.current)) {
    return `replica '${id}' wraps new data keys under KEK '${theirs.current}', which this config lacks (it has ${mine.ids.join(', ')}): add it to recording.encryption.keys`;
  }
  if (!theirs.ids.includes(mine.current)) {
    return `this config's current KEK '${mine.current}' is not among replica '${id}'s KEKs (${theirs.ids.join(', ')}), so it could not read what this one records: add '${mine.current}' there as a non-current key first`;
  }
  return undefined;
}

/**
 * Says this replica's KEKs in the membership, then compares them with every live replica's (ReplicaKeksError when
 * they cannot read each other's recordings). Said before compared: of two replicas starting at once with incompatible
 * keys, the second to read sees the first, so at least one is refused.
 */
export async function checkReplicaKeks(store: ClusterStore, self: { instanceId: string; boot: string }, mine: MemberKeks, goneAfterMs: number): Promise<void> {
  await store.publishMemberKeks(self.instanceId, self.boot, mine);
  const problems = (await store.members())
    .filter((m) => m.id !== self.instanceId && m.state !== 'gone' && m.ageUs < goneAfterMs * 1000 && m.keks !== null)
    .flatMap((m) => keksIncompatibility(mine, m.id, m.keks!) ?? []);
  if (problems.length > 0) throw new ReplicaKeksError(problems);
}

export interface EncryptionStartOptions {
  encryption: EncryptionConfig | undefined;
  store: DataKeyStore & ClusterStore;
  /** This replica in the membership (joined already). */
  member: { instanceId: string; boot: string };
  goneAfterMs: number;
  log: Logger;
  nowUs: number;
}

/**
 * The keyring recording.encryption describes (undefined: plain recording, warned of once), checked against the store
 * and the live replicas. Throws KekMismatchError or ReplicaKeksError: the gateway does not start.
 */
export async function startEncryption(o: EncryptionStartOptions): Promise<Keyring | undefined> {
  const keyring = keyringFromConfig(o.encryption);
  if (keyring === undefined) o.log.warn(plainRecordingWarning);
  else {
    const added = await checkKeks(o.store, keyring, o.nowUs);
    o.log.info({ current: keyring.current.id, keks: keyring.keks.map((k) => k.description), new: added }, 'recordings are encrypted at rest');
  }
  const unreadable = (await o.store.dataKeyCounts()).filter((c) => keyring?.kek(c.kekId) === undefined);
  if (unreadable.length > 0) {
    o.log.warn(
      { keks: Object.fromEntries(unreadable.map((c) => [c.kekId, c.count])) },
      'the store holds data keys under KEKs this config lacks: those recordings cannot be read through this gateway (verify still checks them); add the KEKs to recording.encryption.keys',
    );
  }
  await checkReplicaKeks(o.store, o.member, memberKeksOf(keyring), o.goneAfterMs);
  return keyring;
}
