import { Command } from 'commander';
import { sessionStatuses } from '../../store/types.js';
import type { ListOptions } from './list-action.js';

export function sessionsListCommand(): Command {
  return new Command('list')
    .description('recorded sessions, newest first')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('-u, --user <subject>', 'only this user')
    .option('--connection <name>', 'only this connection')
    .option('--status <status>', `only sessions that are ${sessionStatuses.join(', ')}`)
    .option('--era <era>', 'only modern (MCP 2026-07-28 exchanges, grouped per principal and connection) or legacy (2025-era) sessions')
    .option('--trace <id>', "only sessions with an exchange of this W3C trace id (from the requests' _meta.traceparent; a scan: narrow it with --since)")
    .option('--since <time>', 'opened at or after: an ISO time, or a duration ago (15m, 2h, 7d)')
    .option('--until <time>', 'opened before: an ISO time, or a duration ago')
    .option('-n, --limit <n>', 'at most this many', '50')
    .option('--json', 'one JSON object per session, one per line')
    .option(
      '--groups',
      "modern clients' exchanges as sessions: per principal and connection across the pooled sessions that recorded them, by trace id, else by an idle gap",
    )
    .option('--idle-gap <duration>', 'with --groups: the idle gap that starts a new group of untraced exchanges (default: sessions.viewIdleGap, 5m)')
    .action(async (o: ListOptions) => (await import('./list-action.js')).sessionsListAction(o));
}
