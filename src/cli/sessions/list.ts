import { Command } from 'commander';
import { attestSessions } from '../../recording/attest.js';
import { isTraceId, sessionsWithTrace, traceScanLimit } from '../../recording/exchanges.js';
import { nowUs } from '../../recording/time.js';
import { parseDuration } from '../../core/duration.js';
import { type GroupQuery, groupScanLimit, listGroups } from '../../recording/session-groups.js';
import { durationOf, isoUs, peerInfo, shown } from '../../recording/transcript.js';
import { type SessionEra, type SessionQuery, type SessionRow, type SessionStatus, sessionEras } from '../../store/types.js';
import { parseTimeArg, storeForCommand } from '../store-for-command.js';
import { table } from '../table.js';

interface ListOptions {
  config?: string;
  user?: string;
  connection?: string;
  status?: string;
  era?: string;
  trace?: string;
  since?: string;
  until?: string;
  limit: string;
  json?: boolean;
  groups?: boolean;
  idleGap?: string;
}

const statuses: SessionStatus[] = ['open', 'closed', 'cut-off'];

export function sessionsListCommand(): Command {
  return new Command('list')
    .description('recorded sessions, newest first')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('-u, --user <subject>', 'only this user')
    .option('--connection <name>', 'only this connection')
    .option('--status <status>', `only sessions that are ${statuses.join(', ')}`)
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
    .action(async (o: ListOptions) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        process.stderr.write(`portcullis: --limit expects a whole number from 1 to 10000, found ${JSON.stringify(o.limit)}\n`);
        process.exit(2);
      }
      if (o.status !== undefined && !statuses.includes(o.status as SessionStatus)) {
        process.stderr.write(`portcullis: --status expects one of ${statuses.join(', ')}, found ${JSON.stringify(o.status)}\n`);
        process.exit(2);
      }
      if (o.era !== undefined && !sessionEras.includes(o.era as SessionEra)) {
        process.stderr.write(`portcullis: --era expects one of ${sessionEras.join(', ')}, found ${JSON.stringify(o.era)}\n`);
        process.exit(2);
      }
      if (o.trace !== undefined && !isTraceId(o.trace)) {
        process.stderr.write(`portcullis: --trace expects a W3C trace id (32 hex digits, not all zero), found ${JSON.stringify(o.trace.slice(0, 80))}\n`);
        process.exit(2);
      }
      if (o.groups) {
        if (o.status !== undefined || o.era !== undefined || o.trace !== undefined) {
          process.stderr.write(
            'portcullis: --groups lists modern exchanges by group; --status, --era and --trace do not apply (use --user, --connection, --since, --until)\n',
          );
          process.exit(2);
        }
        await listGroupsCommand(o, limit);
        return;
      }
      const query: SessionQuery = { limit };
      if (o.era) query.era = o.era as SessionEra;
      if (o.user) query.subject = o.user;
      if (o.connection) query.connection = o.connection;
      if (o.status) query.status = o.status as SessionStatus;
      if (o.since) query.fromUs = parseTimeArg(o.since, '--since');
      if (o.until) query.toUs = parseTimeArg(o.until, '--until');
      const { store } = await storeForCommand(o.config);
      try {
        // Who, to what and when as each session's hashed opening states them; a row that says otherwise is marked.
        let found: SessionRow[];
        if (o.trace === undefined) found = await store.listSessions(query);
        else {
          const scan = await sessionsWithTrace(store, query, o.trace);
          found = scan.sessions;
          if (scan.exhausted)
            process.stderr.write(
              `portcullis: stopped after scanning ${traceScanLimit} sessions for the trace; narrow the search (--since, --user, --connection)\n`,
            );
        }
        const sessions = await attestSessions(store, found);
        if (o.json) {
          for (const s of sessions) process.stdout.write(`${JSON.stringify(s)}\n`);
          return;
        }
        if (sessions.length === 0) {
          process.stdout.write('no sessions match\n');
          return;
        }
        const now = nowUs();
        const rows = [['SESSION', 'OPENED (UTC)', 'DURATION', 'USER', 'CONNECTION', 'ERA', 'STATUS', 'EVENTS', 'CLIENT']];
        for (const s of sessions) {
          rows.push([
            s.id,
            isoUs(s.openedAtUs).slice(0, 19).replace('T', ' '),
            durationOf(s, now),
            shown(s.subject),
            shown(s.connection),
            s.era,
            s.tampered.length > 0 ? `${s.status} ALTERED` : s.status,
            s.eventCount === null ? '-' : String(s.eventCount),
            s.clientInfo ? peerInfo(s.clientInfo) : '-',
          ]);
        }
        process.stdout.write(`${table(rows)}\n`);
        const altered = sessions.filter((s) => s.tampered.length > 0);
        if (altered.length > 0) {
          process.stderr.write(
            `portcullis: ${altered.length} session row${altered.length === 1 ? '' : 's'} disagree${altered.length === 1 ? 's' : ''} with the recording (marked ALTERED; shown as recorded): ` +
              `${altered.map((s) => `${s.id} (${s.tampered.map((m) => m.column).join(', ')})`).join('; ')}; \`portcullis sessions verify <id>\` tells more\n`,
          );
        }
      } finally {
        await store.close();
      }
    });
}

/** `sessions list --groups`: the groups of modern exchanges, newest first. */
async function listGroupsCommand(o: ListOptions, limit: number): Promise<void> {
  const gapArg = o.idleGap === undefined ? undefined : parseDuration(o.idleGap);
  if (o.idleGap !== undefined && (gapArg === undefined || gapArg < 1)) {
    process.stderr.write(`portcullis: --idle-gap expects a duration such as 5m, 90s or 500ms, found ${JSON.stringify(o.idleGap.slice(0, 80))}\n`);
    process.exit(2);
  }
  const query: GroupQuery = { limit };
  if (o.user) query.subject = o.user;
  if (o.connection) query.connection = o.connection;
  if (o.since) query.fromUs = parseTimeArg(o.since, '--since');
  if (o.until) query.toUs = parseTimeArg(o.until, '--until');
  const { config, store } = await storeForCommand(o.config);
  try {
    const gapMs = gapArg ?? config.sessions.viewIdleGapMs;
    const { groups, exhausted } = await listGroups(store, query, gapMs);
    if (exhausted)
      process.stderr.write(`portcullis: stopped after reading ${groupScanLimit} pooled sessions; narrow the search (--since, --user, --connection)\n`);
    if (o.json) {
      for (const g of groups) process.stdout.write(`${JSON.stringify({ ...g, idleGapMs: gapMs })}\n`);
      return;
    }
    if (groups.length === 0) {
      process.stdout.write('no group of modern exchanges matches\n');
      return;
    }
    const rows = [['GROUP', 'FIRST (UTC)', 'DURATION', 'USER', 'CONNECTION', 'EXCHANGES', 'BY', 'SESSIONS']];
    for (const g of groups) {
      rows.push([
        g.id,
        isoUs(g.firstUs).slice(0, 19).replace('T', ' '),
        durationOf({ openedAtUs: g.firstUs, closedAtUs: g.lastUs }, nowUs()),
        shown(g.subject),
        shown(g.connection),
        String(g.exchanges),
        g.traceId !== undefined ? `trace ${g.traceId}` : `idle gap ${g.label}`,
        `${g.sessions.length}${g.open ? ' open' : ''}${g.tampered ? ' ALTERED' : ''}`,
      ]);
    }
    process.stdout.write(`${table(rows)}\n`);
  } finally {
    await store.close();
  }
}
