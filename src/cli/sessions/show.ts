import { Command } from 'commander';
import { attestSession } from '../../recording/attest.js';
import { nowUs } from '../../recording/time.js';
import { describeEvent, describeSession } from '../../recording/transcript.js';
import { storeForCommand } from '../store-for-command.js';

export function sessionsShowCommand(): Command {
  return new Command('show')
    .description("a session's facts and a readable transcript of everything it recorded")
    .argument('<session>', 'the session id')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('--json', 'the session row and its events as JSON')
    .action(async (id: string, o: { config?: string; json?: boolean }) => {
      const { store } = await storeForCommand(o.config);
      try {
        const session = await attestSession(store, await store.getSession(id));
        if (session === undefined) {
          process.stderr.write(`portcullis: no session ${JSON.stringify(id)} in ${store.location}; \`portcullis sessions list\` shows the recorded ones\n`);
          process.exitCode = 1;
          return;
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ session, events: await store.events(id, -1, 1_000_000) })}\n`);
          return;
        }
        process.stdout.write(`${describeSession(session, nowUs()).join('\n')}\n`);
        // The facts above are the recording's; what the row claims instead is shown, never taken as fact.
        for (const m of session.tampered) process.stdout.write(`ALTERED     ${m.message}\n`);
        process.stdout.write('\n');
        for (let after = -1; ; ) {
          const events = await store.events(id, after, 5000);
          for (const e of events) process.stdout.write(`${describeEvent(e)}\n`);
          if (events.length < 5000) break;
          after = events.at(-1)!.seq;
        }
      } finally {
        await store.close();
      }
    });
}
