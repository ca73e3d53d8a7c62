import { Command } from 'commander';
import { attestSession } from '../../recording/attest.js';
import { nowUs } from '../../recording/time.js';
import { eventsOfTrace, isTraceId } from '../../recording/exchanges.js';
import { describeEvent, describeSession, shown } from '../../recording/transcript.js';
import { storeForCommand } from '../store-for-command.js';

export function sessionsShowCommand(): Command {
  return new Command('show')
    .description("a session's facts and a readable transcript of everything it recorded")
    .argument('<session>', 'the session id')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('--json', 'the session row and its events as JSON')
    .option('--trace <id>', "only the exchanges of this W3C trace id (32 hex digits, from the requests' _meta.traceparent): grouping, not proof")
    .action(async (id: string, o: { config?: string; json?: boolean; trace?: string }) => {
      if (o.trace !== undefined && !isTraceId(o.trace)) {
        process.stderr.write(`portcullis: --trace expects a W3C trace id (32 hex digits, not all zero), found ${JSON.stringify(o.trace.slice(0, 80))}\n`);
        process.exit(2);
      }
      const { store } = await storeForCommand(o.config);
      try {
        const session = await attestSession(store, await store.getSession(id));
        if (session === undefined) {
          process.stderr.write(`portcullis: no session ${JSON.stringify(id)} in ${store.location}; \`portcullis sessions list\` shows the recorded ones\n`);
          process.exitCode = 1;
          return;
        }
        if (o.trace !== undefined) {
          // One trace's exchanges need the whole session read (responses and rounds follow their requests' ids).
          const events = eventsOfTrace(await store.events(id, -1, 1_000_000), o.trace);
          if (o.json) {
            process.stdout.write(`${JSON.stringify({ session, trace: o.trace.toLowerCase(), events })}\n`);
            return;
          }
          process.stdout.write(`${describeSession(session, nowUs()).join('\n')}\n`);
          for (const m of session.tampered) process.stdout.write(`ALTERED     ${shown(m.message)}\n`);
          process.stdout.write(`Trace       ${o.trace.toLowerCase()}: ${events.length} events (as the client grouped them; a trace id proves nothing)\n\n`);
          for (const e of events) process.stdout.write(`${describeEvent(e)}\n`);
          if (events.length === 0) process.stdout.write('no exchange of this session carries that trace id\n');
          return;
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ session, events: await store.events(id, -1, 1_000_000) })}\n`);
          return;
        }
        process.stdout.write(`${describeSession(session, nowUs()).join('\n')}\n`);
        // The facts above are the recording's; what the row claims instead is shown, never taken as fact.
        for (const m of session.tampered) process.stdout.write(`ALTERED     ${shown(m.message)}\n`);
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
