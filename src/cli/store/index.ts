import { Command } from 'commander';

/** `portcullis store …`: work on the recording store itself, where the gateway's config and data directory are. */

function encryptCommand(): Command {
  return new Command('encrypt')
    .description(
      'encrypts recordings made plain, in place (recording.encryption must be configured): each sealed session gets a data key, its payloads are sealed, its chain hashed again and its seal signed again, with an `encrypted` ledger entry; resumable; open sessions are left for a later run. Each session is one transaction: on SQLite, which has one writer, run it while the gateway is stopped or quiet',
    )
    .option('-c, --config <file>', "the gateway's config file (its store, recording.encryption, and signing key)")
    .option('--json', 'the report as JSON')
    .action(async (o: { config?: string; json?: boolean }) => (await import('./encrypt-action.js')).storeEncryptAction(o));
}

export function storeCommand(): Command {
  const store = new Command('store').description('the recording store itself: encrypt recordings made plain');
  store.addCommand(encryptCommand());
  return store;
}
