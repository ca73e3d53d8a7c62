import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { get } from '../api';
import { Link } from '../components/link';
import { duration, person, time } from '../format';
import { Badge, type EventLine, TimelineItem, type Verification } from './replay';
import type { SessionGroup } from '../../../src/recording/session-groups.js';

/** A pooled session a group's exchanges were recorded in, as the group view links it. */
interface GroupSession {
  id: string;
  status: string;
  openedAtUs: number;
  tampered: Array<{ message: string }>;
}

/**
 * A modern client's session as a user sees it: one group of its exchanges (by trace id, else by an idle gap) over the
 * pooled sessions that recorded them, in time order. Each pooled session stays one link away, verifiable whole.
 */
export function GroupPage({ id }: { id: string }) {
  const [group, setGroup] = useState<{ group: SessionGroup; sessions: GroupSession[]; idleGapMs: number } | undefined>(undefined);
  const [events, setEvents] = useState<EventLine[] | undefined>(undefined);
  const [verification, setVerification] = useState<Verification | string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const path = `/api/sessions/${encodeURIComponent(id)}`;
  useEffect(() => {
    get<{ group: SessionGroup; sessions: GroupSession[]; idleGapMs: number }>(path).then(setGroup, (err: Error) => setError(err.message));
    get<{ events: EventLine[] }>(`${path}/events`).then(
      (r) => setEvents(r.events),
      (err: Error) => setError(err.message),
    );
    get<Verification>(`${path}/verify`).then(setVerification, (err: Error) => setVerification(err.message));
  }, [id]);

  if (error !== undefined) return <Alert message={error} />;
  if (group === undefined || events === undefined) return <p>Loading the session…</p>;
  const g = group.group;
  return (
    <>
      <p>
        <Link href="/?view=groups">← Sessions</Link>
      </p>
      <h1>
        Session <code>{g.id}</code>
      </h1>
      <dl class="meta">
        <dt>User</dt>
        <dd>{person(g)}</dd>
        <dt>Connection</dt>
        <dd>{g.connection}</dd>
        <dt>Era</dt>
        <dd>modern: MCP 2026-07-28 exchanges of one principal on one connection, each naming its protocol version</dd>
        <dt>Grouped by</dt>
        <dd>
          {g.traceId !== undefined ? `the W3C trace ${g.traceId} its requests carry` : `an idle gap of ${duration(group.idleGapMs)} (group ${g.label})`}{' '}
          <span class="hint">(grouping, not proof)</span>
        </dd>
        <dt>Exchanges</dt>
        <dd>
          {g.exchanges}, {time(g.firstUs)} to {time(g.lastUs)} ({duration((g.lastUs - g.firstUs) / 1000)})
          {g.open && <span class="hint"> · a session of it is open: more may join</span>}
        </dd>
        <dt>Recorded in</dt>
        <dd>
          <ul class="plain">
            {group.sessions.map((s) => (
              <li key={s.id}>
                <Link href={`/sessions/${encodeURIComponent(s.id)}`}>{s.id}</Link> <span class="hint">pooled session opened {time(s.openedAtUs)}</span>{' '}
                <span class={`status status-${s.status}`}>{s.status}</span>
                {s.tampered.length > 0 && <span class="flag deny"> row altered</span>}
              </li>
            ))}
          </ul>
        </dd>
        <dt>Integrity</dt>
        <dd>
          <Badge v={verification} />
        </dd>
      </dl>
      <p>
        <a class="button" href={`${path}/export`} download={`portcullis-group-${g.id}.jsonl`}>
          Export JSONL
        </a>
      </p>
      <ol class="timeline" aria-label="Events">
        {events.map((e) => {
          const anchor = `event-${e.session ?? ''}-${e.seq}`;
          // Times from the group's first request: the pooled sessions' own clocks start apart.
          const at = { ...e, monoUs: Math.max(0, (e.timeUs ?? g.firstUs) - g.firstUs) };
          return <TimelineItem key={anchor} anchor={anchor} e={at} onSeek={() => {}} />;
        })}
      </ol>
    </>
  );
}
