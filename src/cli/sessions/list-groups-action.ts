import { parseDuration } from '../../core/duration.js';
import type { ErasureFacts } from '../../recording/erasure-facts.js';
import {
  type ErasedModernSession,
  type GroupQuery,
  groupScanLimit,
  type ListedGroup,
  listGroups,
  type UnreadableModernSession,
  vouchListing,
} from '../../recording/session-groups.js';
import { nowUs } from '../../recording/time.js';
import { durationOf, isoUs, shown } from '../../recording/transcript.js';
import { printList } from '../print-list.js';
import { parseTimeArg, storeForCommand, trustedKeysForCommand } from '../store-for-command.js';

/**
 * `sessions list --groups`: the groups of modern exchanges, newest first, and in their place the pooled sessions that
 * cannot be grouped because their recordings cannot be read here (grouping reads them): erased, encrypted under a KEK
 * this config lacks, altered. The table marks them; the lines after it say who erased each, when and why, or why it
 * cannot be read and what to do, and which groups may be partly erased. --json: the API's fields, one object a line
 * (a group, or a session that cannot be grouped: that one has `unreadableKind`).
 */

/** The options of `sessions list` that apply with --groups (its others are refused before). */
export interface GroupsListOptions {
  config?: string;
  user?: string;
  connection?: string;
  since?: string;
  until?: string;
  json?: boolean;
  idleGap?: string;
}

/** A pooled session a listing keeps aside, in place of the groups it held. */
type Aside = ErasedModernSession | UnreadableModernSession;

const isErased = (s: Aside): s is ErasedModernSession => s.unreadableKind === 'erased';

/** Why an erasure is marked UNSIGNED (as the console says it). */
const unsigned =
  "UNSIGNED: no signed ledger entry vouches for this erasure (verify fails it): its data key's row was changed outside Portcullis, or the gateway that erased it is not in recording.trustedKeys";

/** Who erased a recording, when and why, in a line; UNSIGNED when nothing vouches for it. */
function erasedBy(e: ErasureFacts): string {
  return `erased ${isoUs(e.erasedAtUs)} by ${shown(e.by ?? 'unknown')}: ${shown(e.reason ?? '')}${e.vouched === false ? `; ${unsigned}` : ''}`;
}

/** The lines that say why each session set aside is not grouped, and which groups may be partly erased. */
function notes(aside: readonly Aside[], groups: readonly ListedGroup[]): string[] {
  const out: string[] = [];
  if (aside.length > 0) out.push('', 'Not grouped: these pooled sessions cannot be read here, and grouping reads them');
  for (const s of aside) {
    if (isErased(s)) out.push(`  ${s.id}  ${erasedBy(s.erased)}`);
    else out.push(`  ${s.id}  unreadable: ${shown(s.unreadable)}`, `  ${' '.repeat(s.id.length)}  fix: ${shown(s.unreadableFix)}`);
  }
  const near = groups.filter((g) => g.erasedNearby.length > 0);
  if (near.length > 0)
    out.push(
      '',
      "May be partly erased: exchanges of the group's user on its connection, within the idle gap of it, were erased with these sessions; those that were the group's, if any, can never be read, and which were cannot be told",
    );
  for (const g of near) for (const e of g.erasedNearby) out.push(`  ${g.id}  session ${e.session} ${erasedBy(e.erased)}`);
  return out;
}

export async function listGroupsAction(o: GroupsListOptions, limit: number): Promise<void> {
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
    const listed = await listGroups(store, query, gapMs);
    // Whether a signed ledger entry vouches for an erasure is told by a trusted key: without one, it is not said.
    const trusted = await trustedKeysForCommand(config, store, false);
    const { groups, erased, unreadable, exhausted } = trusted.size > 0 ? await vouchListing(store, listed, trusted) : listed;
    if (exhausted)
      process.stderr.write(`portcullis: stopped after reading ${groupScanLimit} pooled sessions; narrow the search (--since, --user, --connection)\n`);
    if (trusted.size === 0 && (erased.length > 0 || groups.some((g) => g.erasedNearby.length > 0)))
      process.stderr.write(
        `portcullis: no trusted key (neither ${config.dataDir}/signing-key.pem nor recording.signingKey nor recording.trustedKeys): whether a signed ledger entry vouches for each erasure is not checked\n`,
      );
    if (o.json) {
      for (const item of [...groups.map((g) => ({ ...g, idleGapMs: gapMs })), ...erased, ...unreadable]) process.stdout.write(`${JSON.stringify(item)}\n`);
      return;
    }
    const aside: Aside[] = [...erased, ...unreadable].sort((a, b) => b.openedAtUs - a.openedAtUs || (a.id < b.id ? -1 : 1));
    const rows = [...groups.map((g) => ({ at: g.firstUs, group: g })), ...aside.map((s) => ({ at: s.openedAtUs, aside: s }))].sort((a, b) => b.at - a.at);
    const now = nowUs();
    const when = (us: number) => isoUs(us).slice(0, 19).replace('T', ' ');
    printList(rows, {
      none: 'no group of modern exchanges matches',
      header: ['GROUP', 'FIRST (UTC)', 'DURATION', 'USER', 'CONNECTION', 'EXCHANGES', 'BY', 'SESSIONS'],
      row: (r) => {
        if ('aside' in r) {
          const s = r.aside;
          const mark = isErased(s) ? `ERASED${s.erased.vouched === false ? ' UNSIGNED' : ''}` : 'UNREADABLE';
          return [s.id, when(s.openedAtUs), durationOf(s, now), shown(s.subject), shown(s.connection), '-', 'not grouped', `1 ${mark}`];
        }
        const g = r.group;
        return [
          g.id,
          when(g.firstUs),
          durationOf({ openedAtUs: g.firstUs, closedAtUs: g.lastUs }, now),
          shown(g.subject),
          shown(g.connection),
          String(g.exchanges),
          g.traceId !== undefined ? `trace ${g.traceId}` : `idle gap ${g.label}`,
          `${g.sessions.length}${g.open ? ' open' : ''}${g.tampered ? ' ALTERED' : ''}${g.erasedNearby.length > 0 ? ' PARTLY ERASED?' : ''}`,
        ];
      },
    });
    const more = notes(aside, groups);
    if (more.length > 0) process.stdout.write(`${more.join('\n')}\n`);
  } finally {
    await store.close();
  }
}
