import { Command } from 'commander';
import type { ShowOptions } from './show-action.js';

export function sessionsShowCommand(): Command {
  return new Command('show')
    .description("a session's facts and a readable transcript of everything it recorded")
    .argument('<session>', 'the session id, or a group id of modern exchanges (<session id>.<seq>, as `sessions list --groups` names them)')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('--json', 'the session row and its events as JSON')
    .option('--trace <id>', "only the exchanges of this W3C trace id (32 hex digits, from the requests' _meta.traceparent): grouping, not proof")
    .option('--group <label>', "only one group of a modern session's exchanges (as the Groups lines name them: a number, or a trace id)")
    .option('--idle-gap <duration>', 'the idle gap that starts a new group of untraced exchanges (default: sessions.viewIdleGap, 5m)')
    .action(async (id: string, o: ShowOptions) => (await import('./show-action.js')).sessionsShowAction(id, o));
}
