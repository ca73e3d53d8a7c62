import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * This gateway's instance id: which gateway recorded a session, whose open sessions a restart recovers, and
 * whose ledger a session belongs to. Kept in the data directory so it survives restarts (and a crash);
 * `recording.instanceId` sets it where the data directory is not persistent. Two gateways must never share one.
 */
export function loadInstanceId(dataDir: string, configured?: string): string {
  if (configured !== undefined) return configured;
  const path = join(dataDir, 'instance-id');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[A-Za-z0-9._-]{1,64}$/.test(id)) return id;
    throw new Error(`${path} does not hold an instance id (1-64 letters, digits, '.', '_' or '-'); remove it to have a new one made`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const id = `gw-${randomBytes(6).toString('hex')}`;
  writeFileSync(path, `${id}\n`, { flag: 'wx' });
  return id;
}
