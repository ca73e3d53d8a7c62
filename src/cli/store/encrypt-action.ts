import { keyringFromConfig } from '../../encryption/keyring-from-config.js';
import { encryptStore } from '../../recording/encrypt-store.js';
import { loadSigningKey } from '../../recording/keys.js';
import { openStore } from '../../store/open.js';
import { type Store, StoreSchemaError, StoreUnavailableError } from '../../store/store.js';
import { configForCommand } from '../load-config.js';
import { trustedKeysForCommand } from '../store-for-command.js';

/** `portcullis store encrypt` (flags in index.ts): direct to the store, like the gateway's own recorder. */
export async function storeEncryptAction(o: { config?: string; json?: boolean }): Promise<void> {
  const fail = (message: string, code = 1): never => {
    process.stderr.write(`portcullis store encrypt: ${message}\n`);
    process.exit(code);
  };
  const config = configForCommand(o.config);
  const keyring = keyringFromConfig(config.recording.encryption);
  if (keyring === undefined) fail('recording.encryption is not configured: there is no key to encrypt with (see docs/recording.md, "Encryption")', 2);
  // The gateway's own signing key signs the seals again: verify trusts it as it trusted the seals it replaces.
  const key = loadSigningKey(config.dataDir, config.recording.signingKey);
  let store: Store;
  try {
    store = await openStore(config.store.reveal());
    await store.migrate();
  } catch (err) {
    if (err instanceof StoreSchemaError || err instanceof StoreUnavailableError) fail(err.message);
    throw err;
  }
  try {
    const trusted = await trustedKeysForCommand(config, store, false);
    const report = await encryptStore({
      store,
      keyring: keyring!,
      key,
      trusted,
      ...(o.json ? {} : { progress: (line: string) => process.stdout.write(`${line}\n`) }),
    });
    if (o.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else {
      for (const r of report.refused) process.stdout.write(`NOT encrypted ${r.session}: it does not verify as it is (${r.why}); left plain\n`);
      for (const id of report.open) process.stdout.write(`skipped ${id}: still open; run this again once it has ended\n`);
      for (const id of report.raced) process.stdout.write(`skipped ${id}: it changed while being encrypted; run this again\n`);
      process.stdout.write(
        `${report.sessions.length} session(s) encrypted, ${report.accessRequests} access request reason(s) encrypted; ${report.open.length} open, ${report.refused.length} refused, ${report.raced.length} to retry\n`,
      );
    }
    if (report.refused.length > 0) process.exitCode = 1;
  } finally {
    await store.close();
  }
}
