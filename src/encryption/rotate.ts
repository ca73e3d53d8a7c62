import type { MemberRow } from '../store/cluster.js';
import type { DataKeyStore } from '../store/data-keys.js';
import type { DataKeyRow } from '../store/types.js';
import type { Keyring } from './keyring.js';

/**
 * Rotation: every data key not wrapped by the current KEK is unwrapped with its own KEK and wrapped again with the
 * current one. Payloads, hash chains and seals are untouched (they never depend on the wrapping). Each re-wrap is a
 * compare-and-set on the row as read (`rewrapDataKey`), so live gateways, a second rotation, or an erasure racing with
 * it never lose a write: a row that changed is read again (erased or already current: nothing to do). Nothing is kept
 * between runs: a run re-wraps what is not under the current KEK, so an interrupted one is resumed by running it again.
 * A pass walks the keys in owner order; a data key written under an old KEK behind the cursor meanwhile (a replica
 * still making it current) is found by the next pass, and passes repeat until one re-wraps nothing.
 */

export interface RotationProgress {
  /** Data keys re-wrapped under the current KEK, by the KEK they were under. */
  rewrapped: Map<string, number>;
  /** Data keys under KEKs the keyring lacks (they cannot be unwrapped here), by KEK, as last seen. */
  lacking: Map<string, number>;
  /** Data keys whose wrapping does not unwrap (altered, or not the key of that id): owner and why. */
  failed: Array<{ owner: string; kekId: string; message: string }>;
  /** Passes begun. */
  passes: number;
}

export interface RotationResult extends RotationProgress {
  /** Data keys were still being re-wrapped in the last pass allowed: some replica still wraps new ones under an old KEK. */
  unfinished: boolean;
}

export interface RotateOptions {
  /** Data keys read at a time (default 200). */
  batchSize?: number;
  /** Passes at most (default 5): beyond, a replica is still writing under an old KEK. */
  maxPasses?: number;
  /** After each batch: progress reports (and tests, which write under the old KEK while a rotation runs). */
  onBatch?: (progress: RotationProgress) => void | Promise<void>;
}

type Outcome = 'rewrapped' | 'settled' | 'lacking' | 'failed';

export async function rotateDataKeys(store: DataKeyStore, keyring: Keyring, o: RotateOptions = {}): Promise<RotationResult> {
  const current = keyring.current;
  const batchSize = o.batchSize ?? 200;
  const maxPasses = o.maxPasses ?? 5;
  const progress: RotationProgress = { rewrapped: new Map(), lacking: new Map(), failed: [], passes: 0 };

  /** Re-wraps one data key, reading it again whenever someone else changed it first. */
  const rewrap = async (row: DataKeyRow): Promise<Outcome> => {
    let cur: DataKeyRow | undefined = row;
    for (;;) {
      if (cur === undefined || cur.wrapped === null || cur.kekId === current.id) return 'settled';
      const kek = keyring.kek(cur.kekId);
      if (kek === undefined) return 'lacking';
      let wrapped: string;
      try {
        const key = await kek.unwrap(cur.wrapped, cur.owner);
        wrapped = await current.wrap(key, cur.owner);
        key.fill(0);
      } catch (err) {
        progress.failed.push({ owner: cur.owner, kekId: cur.kekId, message: (err as Error).message });
        return 'failed';
      }
      if (await store.rewrapDataKey(cur.owner, cur.kekId, cur.wrapped, current.id, wrapped)) {
        progress.rewrapped.set(cur.kekId, (progress.rewrapped.get(cur.kekId) ?? 0) + 1);
        return 'rewrapped';
      }
      [cur] = await store.dataKeys([cur.owner]);
    }
  };

  for (let pass = 1; pass <= maxPasses; pass++) {
    progress.passes = pass;
    progress.lacking = new Map();
    progress.failed = [];
    let rewrappedNow = 0;
    for (let after = ''; ; ) {
      const rows = await store.dataKeysNotUnder(current.id, after, batchSize);
      if (rows.length === 0) break;
      for (const row of rows) {
        const outcome = await rewrap(row);
        if (outcome === 'rewrapped') rewrappedNow++;
        else if (outcome === 'lacking') progress.lacking.set(row.kekId, (progress.lacking.get(row.kekId) ?? 0) + 1);
      }
      after = rows.at(-1)!.owner;
      await o.onBatch?.(progress);
    }
    if (rewrappedNow === 0) return { ...progress, unfinished: false };
  }
  return { ...progress, unfinished: true };
}

/**
 * Why rotating to KEK `currentId` now would leave a live replica unable to read (it lacks the KEK, or records plain),
 * one line each; and the replicas that still wrap new data keys under another KEK (the rotation re-wraps those too,
 * but cannot finish while they write).
 */
export function replicasAgainstRotation(members: MemberRow[], currentId: string, goneAfterMs: number): { blocking: string[]; behind: string[] } {
  const live = members.filter((m) => m.state !== 'gone' && m.ageUs < goneAfterMs * 1000 && m.keks !== null);
  return {
    blocking: live
      .filter((m) => !m.keks!.ids.includes(currentId))
      .map((m) =>
        m.keks!.current === null
          ? `replica '${m.id}' records plain (no recording.encryption)`
          : `replica '${m.id}' does not have KEK '${currentId}' (it has ${m.keks!.ids.join(', ')}): it could not read any recording once rotated; add '${currentId}' to its recording.encryption.keys and restart it first`,
      ),
    behind: live.filter((m) => m.keks!.current !== null && m.keks!.current !== currentId && m.keks!.ids.includes(currentId)).map((m) => m.id),
  };
}
