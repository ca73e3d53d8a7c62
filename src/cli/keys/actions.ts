import type { Kek } from '../../encryption/kek.js';
import { keyringFromConfig } from '../../encryption/keyring-from-config.js';
import { replicasAgainstRotation, rotateDataKeys } from '../../encryption/rotate.js';
import { checkKeks, KekMismatchError, kekMatches } from '../../encryption/start-checks.js';
import { nowUs } from '../../recording/time.js';
import type { Store } from '../../store/store.js';
import type { KekCheckRow } from '../../store/types.js';
import { storeForCommand } from '../store-for-command.js';
import { table } from '../table.js';

/** Whether the store knows this KEK as the key configured: what a gateway would find at start. */
async function storeSays(kek: Kek, check: KekCheckRow | undefined): Promise<string> {
  if (check === undefined) return 'new (recorded when a gateway starts with it)';
  try {
    return (await kekMatches(kek, check)) ? 'ok' : 'MISMATCH: the store knows another key by this id';
  } catch (err) {
    return `unreachable: ${(err as Error).message}`;
  }
}

/** `portcullis keys list`: each KEK, configured or only in the store, with its data keys; exit code 1 on a mismatch. */
export async function keysListAction(o: { config?: string; json?: boolean }): Promise<void> {
  const { config, store } = await storeForCommand(o.config);
  try {
    const keyring = keyringFromConfig(config.recording.encryption);
    const counts = new Map((await store.dataKeyCounts()).map((c) => [c.kekId, c.count]));
    const checks = new Map((await store.kekChecks()).map((c) => [c.kekId, c]));
    const rows: Array<{ id: string; provider: string; current: boolean; dataKeys: number; store: string; about: string }> = [];
    for (const kek of keyring?.keks ?? []) {
      rows.push({
        id: kek.id,
        provider: kek.provider,
        current: kek.id === keyring?.current.id,
        dataKeys: counts.get(kek.id) ?? 0,
        store: await storeSays(kek, checks.get(kek.id)),
        about: kek.description,
      });
    }
    for (const id of [...new Set([...counts.keys(), ...checks.keys()])].sort()) {
      if (keyring?.kek(id) !== undefined) continue;
      rows.push({
        id,
        provider: checks.get(id)?.provider ?? '?',
        current: false,
        dataKeys: counts.get(id) ?? 0,
        store: 'known',
        about: 'not in this config: recordings under it cannot be read here',
      });
    }
    if (rows.some((r) => r.store.startsWith('MISMATCH'))) process.exitCode = 1;
    if (o.json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    if (keyring === undefined) process.stdout.write('recording.encryption is not configured: new recordings are stored plain\n');
    if (rows.length > 0) {
      const cells = [
        ['KEK', 'PROVIDER', 'CURRENT', 'DATA KEYS', 'STORE', 'ABOUT'],
        ...rows.map((r) => [r.id, r.provider, r.current ? 'yes' : '', String(r.dataKeys), r.store, r.about]),
      ];
      process.stdout.write(`${table(cells)}\n`);
    }
    for (const line of await replicaLines(store, config.cluster.goneAfterMs)) process.stdout.write(`${line}\n`);
  } finally {
    await store.close();
  }
}

/** What each live replica says it has. */
async function replicaLines(store: Store, goneAfterMs: number): Promise<string[]> {
  return (await store.members())
    .filter((m) => m.state !== 'gone' && m.ageUs < goneAfterMs * 1000 && m.keks !== null)
    .map((m) => `replica ${m.id}: ${m.keks!.current === null ? 'records plain' : `current KEK ${m.keks!.current} (has ${m.keks!.ids.join(', ')})`}`);
}

/** `portcullis keys rotate`: every data key under the current KEK; exit code 1 when some could not be. */
export async function keysRotateAction(o: { config?: string; batch: string }): Promise<void> {
  const batchSize = Number(o.batch);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    process.stderr.write(`portcullis: --batch expects a number of data keys from 1 to 10000, found ${JSON.stringify(o.batch)}\n`);
    process.exit(2);
  }
  const { config, store } = await storeForCommand(o.config);
  const fail = (message: string) => {
    process.stderr.write(`portcullis: ${message}\n`);
    process.exitCode = 1;
  };
  try {
    const keyring = keyringFromConfig(config.recording.encryption);
    if (keyring === undefined) return fail('recording.encryption is not configured: there is no current KEK to rotate to');
    const current = keyring.current;
    // As a gateway at start: a KEK the store knows as other key material is refused, a new one recorded.
    try {
      await checkKeks(store, keyring, nowUs());
    } catch (err) {
      if (err instanceof KekMismatchError) return fail(err.message);
      throw err;
    }
    const replicas = replicasAgainstRotation(await store.members(), current.id, config.cluster.goneAfterMs);
    if (replicas.blocking.length > 0) return fail(`not rotating to KEK '${current.id}': ${replicas.blocking.join('; ')}`);
    if (replicas.behind.length > 0) {
      process.stderr.write(
        `portcullis: replicas ${replicas.behind.join(', ')} still wrap new data keys under another KEK: make '${current.id}' current there too, or this rotation cannot finish\n`,
      );
    }
    process.stdout.write(`rotating data keys to KEK '${current.id}' (${current.description})\n`);
    const result = await rotateDataKeys(store, keyring, { batchSize });
    const total = [...result.rewrapped.values()].reduce((a, b) => a + b, 0);
    const from = [...result.rewrapped].map(([id, n]) => `${id}: ${n}`).join(', ');
    process.stdout.write(
      `${total} data keys re-wrapped under '${current.id}'${total > 0 ? ` (from ${from})` : ''}, in ${result.passes} pass${result.passes === 1 ? '' : 'es'}\n`,
    );
    for (const f of result.failed) fail(`the data key of ${f.owner} (KEK '${f.kekId}') was not re-wrapped: ${f.message}`);
    if (result.lacking.size > 0) {
      const lacking = [...result.lacking].map(([id, n]) => `${id}: ${n}`).join(', ');
      fail(`data keys under KEKs this config lacks were left as they are (${lacking}): add those KEKs to recording.encryption.keys and run again`);
    }
    if (result.unfinished) {
      fail(
        `data keys are still being written under an old KEK by a replica whose current KEK it is: make '${current.id}' current on every replica, then run again`,
      );
    }
    if (process.exitCode !== 1) process.stdout.write(`every data key is under '${current.id}'\n`);
  } finally {
    await store.close();
  }
}
