import { Command } from 'commander';

/** `portcullis keys …`: the KEKs that encrypt recordings at rest, straight on the store of the gateway whose --config is given. */
export function keysCommand(): Command {
  const keys = new Command('keys').description('recording encryption keys (KEKs): list them, rotate data keys to the current one');
  keys.addCommand(
    new Command('list')
      .description('the configured KEKs, which is current, whether the store knows each as this key, and how many data keys each wraps')
      .option('-c, --config <file>', "the gateway's config file (its store and recording.encryption)")
      .option('--json', 'one JSON object per KEK')
      .action(async (o: { config?: string; json?: boolean }) => (await import('./actions.js')).keysListAction(o)),
  );
  keys.addCommand(
    new Command('rotate')
      .description(
        'wrap every data key not under the current KEK again under it (payloads and chains untouched); resumable, safe while gateways serve; exit code 1 when some could not be',
      )
      .option('-c, --config <file>', "the gateway's config file (its store and recording.encryption)")
      .option('--batch <n>', 'data keys read at a time', '200')
      .action(async (o: { config?: string; batch: string }) => (await import('./actions.js')).keysRotateAction(o)),
  );
  return keys;
}
