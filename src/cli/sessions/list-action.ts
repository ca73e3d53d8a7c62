import { attestSessions } from '../../recording/attest.js';
import { isTraceId, sessionsWithTrace, traceScanLimit } from '../../recording/exchanges.js';
import { nowUs } from '../../recording/time.js';
import { durationOf, isoUs, peerInfo, shown } from '../../recording/transcript.js';
import { type SessionEra, type SessionQuery, type SessionRow, type SessionStatus, sessionEras, sessionStatuses } from '../../store/types.js';
import { parseTimeArg, storeForCommand } from '../store-for-command.js';
import { printList } from '../print-list.js';

export interface ListOptions {
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

/** `portcullis sessions list`: the recorded sessions as a table, each row checked against its recording. */
export async function sessionsListAction(o: ListOptions): Promise<void> {
  const limit = Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    process.stderr.write(`portcullis: --limit expects a whole number from 1 to 10000, found ${JSON.stringify(o.limit)}\n`);
    process.exit(2);
  }
  if (o.status !== undefined && !sessionStatuses.includes(o.status as SessionStatus)) {
    process.stderr.write(`portcullis: --status expects one of ${sessionStatuses.join(', ')}, found ${JSON.stringify(o.status)}\n`);
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
    await (await import('./list-groups-action.js')).listGroupsAction(o, limit);
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
    const now = nowUs();
    printList(sessions, {
      json: o.json,
      none: 'no sessions match',
      header: ['SESSION', 'OPENED (UTC)', 'DURATION', 'USER', 'CONNECTION', 'ERA', 'STATUS', 'EVENTS', 'CLIENT'],
      row: (s) => [
        s.id,
        isoUs(s.openedAtUs).slice(0, 19).replace('T', ' '),
        durationOf(s, now),
        shown(s.subject),
        shown(s.connection),
        s.era,
        s.tampered.length > 0
          ? `${s.status} ALTERED`
          : s.erased !== undefined
            ? `${s.status} ERASED`
            : s.unreadable !== undefined
              ? `${s.status} UNREADABLE`
              : s.status,
        s.eventCount === null ? '-' : String(s.eventCount),
        s.clientInfo ? peerInfo(s.clientInfo) : '-',
      ],
    });
    if (o.json) return;
    const altered = sessions.filter((s) => s.tampered.length > 0);
    if (altered.length > 0) {
      process.stderr.write(
        `portcullis: ${altered.length} session row${altered.length === 1 ? '' : 's'} disagree${altered.length === 1 ? 's' : ''} with the recording (marked ALTERED; shown as recorded): ` +
          `${altered.map((s) => `${s.id} (${s.tampered.map((m) => m.column).join(', ')})`).join('; ')}; \`portcullis sessions verify <id>\` tells more\n`,
      );
    }
    const sealed = sessions.filter((s) => s.unreadable !== undefined && s.erased === undefined);
    if (sealed.length > 0) {
      process.stderr.write(
        `portcullis: ${sealed.length} session${sealed.length === 1 ? '' : 's'} (marked UNREADABLE) cannot be read with this config, shown as the rows say: ${sealed[0]!.unreadable}\n`,
      );
    }
  } finally {
    await store.close();
  }
}
