import { Alert } from '../components/alert';
import { ErasureFlag } from '../components/erasure';
import { Link } from '../components/link';
import { erasureLabel, erasureSummary, partialErasureLabel, partialErasureSummary } from '../erasure';
import { duration, person, time } from '../format';
import { navigate } from '../router';
import type { ErasedModernSession, ListedGroup } from '../../../src/recording/session-groups.js';

/** GET /api/sessions/groups: the groups, and the erased modern sessions whose groups cannot be told. */
export interface GroupListing {
  groups: ListedGroup[];
  erased: ErasedModernSession[];
  exhausted: boolean;
  idleGapMs: number;
}

/** A row of the table: a group, or an erased pooled session in place of the groups it held. */
type Row = { at: number; group: ListedGroup } | { at: number; erased: ErasedModernSession };

const href = (id: string) => `/sessions/${encodeURIComponent(id)}`;

/** Modern clients' exchanges as the sessions a user sees: per principal and connection, by trace id, else by an idle gap. */
export function GroupsTable({ groups }: { groups: GroupListing | undefined }) {
  if (groups === undefined) return <p>Loading…</p>;
  const rows: Row[] = [...groups.groups.map((g) => ({ at: g.firstUs, group: g })), ...groups.erased.map((s) => ({ at: s.openedAtUs, erased: s }))];
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
          <tbody>{rows.map((r) => ('group' in r ? <GroupRow key={r.group.id} g={r.group} /> : <ErasedRow key={r.erased.id} s={r.erased} />))}</tbody>
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
            <ErasureFlag href={href(g.id)} label={partialErasureLabel(g.erasedNearby)} summary={partialErasureSummary(g.erasedNearby)} />
          </>
        )}
      </td>
    </tr>
  );
}

/** An erased pooled session: its exchanges can never be read, so they are in no group; its page says who erased it. */
function ErasedRow({ s }: { s: ErasedModernSession }) {
  return (
    <tr onClick={() => navigate(href(s.id))}>
      <td>
        <Link href={href(s.id)}>{time(s.openedAtUs)}</Link>
      </td>
      <td>{person(s)}</td>
      <td>{s.connection}</td>
      <td colSpan={3} class="hint">
        not grouped: the exchanges of the pooled session opened then were erased, and grouping reads them
      </td>
      <td>
        1 <ErasureFlag href={href(s.id)} label={erasureLabel(s.erased)} summary={erasureSummary(s.erased)} />
      </td>
    </tr>
  );
}
