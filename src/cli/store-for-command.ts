import type { GatewayConfig } from '../config/schema.js';
import { keyringFromConfig } from '../encryption/keyring-from-config.js';
import { isUnreadable, readableStore } from '../encryption/readable-store.js';
import { verifierKeys } from '../recording/keys.js';
import { parseTimeSpec } from '../recording/time.js';
import { trustedKeys } from '../recording/verify.js';
import { openStore } from '../store/open.js';
import { type Store, StoreSchemaError, StoreUnavailableError } from '../store/store.js';
import { configForCommand } from './load-config.js';

/**
 * What a command that reads the gateway's recordings needs: its config and its store, opened for reading, through
 * which payloads read in plain text with the config's KEKs (recording.encryption; see encryption/readable-store.ts).
 */
export async function storeForCommand(configFile: string | undefined): Promise<{ config: GatewayConfig; store: Store }> {
  const config = configForCommand(configFile);
  try {
    return { config, store: readableStore(await openStore(config.store.reveal(), { reader: true }), keyringFromConfig(config.recording.encryption)) };
  } catch (err) {
    if (err instanceof StoreSchemaError || err instanceof StoreUnavailableError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** The keys `verify` trusts: the gateway's own and configured ones; every key the store lists only when asked. */
export async function trustedKeysForCommand(config: GatewayConfig, store: Store, trustStoreKeys: boolean): Promise<Map<string, string>> {
  return trustedKeys(verifierKeys(config.dataDir, config.recording.signingKey, config.recording.trustedKeys), trustStoreKeys ? store : undefined);
}

/** A time for --since/--until (see parseTimeSpec); exits 2 naming the flag when it is not one. */
export function parseTimeArg(value: string, flag: string): number {
  const us = parseTimeSpec(value);
  if (us === undefined) {
    process.stderr.write(
      `portcullis: ${flag} expects an ISO date or time (2026-11-24, 2026-11-24T10:00Z) or a duration ago (15m, 2h, 7d), found ${JSON.stringify(value)}\n`,
    );
    process.exit(2);
  }
  return us;
}

/**
 * Ends a command that could not read a recording (encrypted under a KEK this config lacks, erased, altered) with why
 * and what to do, and exit code 1, instead of a stack trace; anything else is rethrown.
 */
export function failUnreadable(err: unknown): void {
  if (!isUnreadable(err)) throw err;
  process.stderr.write(`portcullis: ${err.message}\n`);
  process.exitCode = 1;
}
