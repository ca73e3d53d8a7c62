import { Alert } from '../components/alert';
import { FlagLink } from '../components/flag-link';
import { Link } from '../components/link';
import { erasureLabel, erasureSummary, partialErasureLabel, partialErasureSummary } from '../erasure';
import { duration, person, time } from '../format';
import { navigate } from '../router';
import { unreadableLabel, unreadableOf, unreadableSummary } from '../unreadable';
import type { ErasedModernSession, ListedGroup, UnreadableModernSession } from '../../../src/recording/session-groups.js';

/**
 * GET /api/sessions/groups: the groups, and the modern sessions whose groups cannot be told because their recordings
 * cannot be read here: erased, or unreadable (no KEK here, altered).
 */
export interface GroupListing {
  groups: ListedGroup[];
  erased: ErasedModernSession[];
  unreadable: UnreadableModernSession[];
  exhausted: boolean;
  idleGapMs: number;
}

/** A row of the table: a group, or a pooled session that cannot be read here in place of the groups it held. */
type Row = { at: number; group: ListedGroup } | { at: number; erased: ErasedModernSession } | { at: number; unreadable: UnreadableModernSession };

const href = (id: string) => `/sessions/${encodeURIComponent(id)}`;

/** Modern clients' exchanges as the sessions a user sees: per principal and connection, by trace id, else by an idle gap. */
export function GroupsTable({ groups }: { groups: GroupListing | undefined }) {
  if (groups === undefined) return <p>Loading…</p>;
  const rows: Row[] = [
    ...groups.groups.map((g) => ({ at: g.firstUs, group: g })),
    ...groups.erased.map((s) => ({ at: s.openedAtUs, erased: s })),
    ...groups.unreadable.map((s) => ({ at: s.openedAtUs, unreadable: s })),
  ];
  rows.sort((a, b) => b.at - a.at);
  return (
    <>
      <p class="hint">
        A modern (2026-07-28) client keeps no session: its exchanges are grouped per user and connection, across the pooled sessions that recorded them, by the
        W3C trace its requests carry, else by an idle gap of {duration(groups.idleGapMs)}. Grouping, not proof.
      </p>
      {groups.exhausted && <Alert message="Only the newest pooled sessions were read: narrow the search by user, connection or time." />}
      {rows.length === 0 ? (
        <p>No group of modern exchanges matches.</p>
      ) : (
        <table class="sessions groups">
          <caption class="visually-hidden">Modern exchanges grouped as sessions, newest first</caption>
          <thead>
            <tr>
              <th scope="col">First exchange</th>
              <th scope="col">User</th>
              <th scope="col">Connection</th>
              <th scope="col">Exchanges</th>
              <th scope="col">Span</th>
              <th scope="col">Grouped by</th>
              <th scope="col">Pooled sessions</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) =>
              'group' in r ? (
                <GroupRow key={r.group.id} g={r.group} />
              ) : 'erased' in r ? (
                <ErasedRow key={r.erased.id} s={r.erased} />
              ) : (
                <UnreadableRow key={r.unreadable.id} s={r.unreadable} />
              ),
            )}
          </tbody>
        </table>
      )}
    </>
  );
}

function GroupRow({ g }: { g: ListedGroup }) {
  return (
    <tr onClick={() => navigate(href(g.id))}>
      <td>
        <Link href={href(g.id)}>{time(g.firstUs)}</Link>
      </td>
      <td>{person(g)}</td>
      <td>{g.connection}</td>
      <td>{g.exchanges}</td>
      <td>{duration((g.lastUs - g.firstUs) / 1000)}</td>
      <td>{g.traceId !== undefined ? <span title={g.traceId}>trace {g.traceId.slice(0, 8)}…</span> : `idle gap (group ${g.label})`}</td>
      <td>
        {g.sessions.length}
        {g.open && <span class="hint"> · open</span>}
        {g.tampered && (
          <>
            {' '}
            <span class="flag deny">row altered</span>
          </>
        )}
        {g.erasedNearby.length > 0 && (
          // Its page says which erased sessions lie near it, and why that may have taken exchanges of it.
          <>
            {' '}
            <FlagLink href={href(g.id)} label={partialErasureLabel(g.erasedNearby)} summary={partialErasureSummary(g.erasedNearby)} />
          </>
        )}
      </td>
    </tr>
  );
}

/** A pooled session a listing keeps aside: its exchanges cannot be read here, so they are in no group. */
type Ungrouped = ErasedModernSession | UnreadableModernSession;

/**
 * A pooled session whose exchanges cannot be read here, so that they are in no group: erased (never again), or
 * unreadable here (no KEK here, altered). `why` ends the row's sentence; its badge leads to its page, which explains.
 */
function UngroupedRow({ s, why, label, summary }: { s: Ungrouped; why: string; label: string; summary: string }) {
  return (
    <tr onClick={() => navigate(href(s.id))}>
      <td>
        <Link href={href(s.id)}>{time(s.openedAtUs)}</Link>
      </td>
      <td>{person(s)}</td>
      <td>{s.connection}</td>
      <td colSpan={3} class="hint">
        not grouped: the exchanges of the pooled session opened then {why}, and grouping reads them
      </td>
      <td>
        1 <FlagLink href={href(s.id)} label={label} summary={summary} />
      </td>
    </tr>
  );
}

function ErasedRow({ s }: { s: ErasedModernSession }) {
  return <UngroupedRow s={s} why="were erased" label={erasureLabel(s.erased)} summary={erasureSummary(s.erased)} />;
}

function UnreadableRow({ s }: { s: UnreadableModernSession }) {
  const u = unreadableOf(s);
  const why = `cannot be read here${s.unreadableKind === 'no-kek' ? ' (its KEK is not configured)' : ' (altered)'}`;
  return <UngroupedRow s={s} why={why} label={unreadableLabel(u)} summary={unreadableSummary(u)} />;
}
