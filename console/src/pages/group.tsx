import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { ApiFailure, get } from '../api';
import { ErasureEntry, PartialErasureEntry } from '../components/erasure';
import { Link } from '../components/link';
import { UnreadableEntry } from '../components/unreadable';
import { duration, person, time } from '../format';
import { unreadableOf } from '../unreadable';
import { type EventLine, TimelineItem } from '../components/timeline';
import { Badge, type Verification } from '../components/verification';
import type { ErasedModernSession, ErasedNearby, SessionGroup, UnreadableModernSession } from '../../../src/recording/session-groups.js';

/** A pooled session a group's exchanges were recorded in, as the group view links it. */
interface GroupSession {
  id: string;
  status: string;
  openedAtUs: number;
  tampered: Array<{ message: string }>;
}

/** GET /api/sessions/<group id>. */
interface GroupAnswer {
  group: SessionGroup;
  sessions: GroupSession[];
  idleGapMs: number;
  /** Erased sessions of its user and connection near it: it may be partly erased. */
  erasedNearby: ErasedNearby[];
}

/**
 * A modern client's session as a user sees it: one group of its exchanges (by trace id, else by an idle gap) over the
 * pooled sessions that recorded them, in time order. Each pooled session stays one link away, verifiable whole.
 */
export function GroupPage({ id }: { id: string }) {
  const [group, setGroup] = useState<GroupAnswer | undefined>(undefined);
  /** Its session, when the group cannot be told apart because that cannot be read here: erased, or unreadable. */
  const [ungroupable, setUngroupable] = useState<ErasedModernSession | UnreadableModernSession | undefined>(undefined);
  const [events, setEvents] = useState<EventLine[] | undefined>(undefined);
  const [verification, setVerification] = useState<Verification | string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const path = `/api/sessions/${encodeURIComponent(id)}`;
  useEffect(() => {
    get<GroupAnswer>(path)
      .then((g) => {
        setGroup(g);
        return get<{ events: EventLine[] }>(`${path}/events`).then((r) => setEvents(r.events));
      })
      .catch((err: Error) => {
        if (!(err instanceof ApiFailure && [410, 503, 500].includes(err.status))) return setError(err.message);
        // Its session was erased (410, gone for good), or cannot be read here (503 no KEK, 500 altered): the group
        // cannot be told apart, and the session says who erased it, or why it cannot be read and what to do.
        const session = id.slice(0, id.lastIndexOf('.'));
        get<{ session: ErasedModernSession | UnreadableModernSession }>(`/api/sessions/${encodeURIComponent(session)}`).then(
          (r) => (r.session.erased || r.session.unreadableFix !== undefined ? setUngroupable(r.session) : setError(err.message)),
          (e: Error) => setError(e.message),
        );
      });
    get<Verification>(`${path}/verify`).then(setVerification, (err: Error) => setVerification(err.message));
  }, [id]);

  if (error !== undefined) return <Alert message={error} />;
  if (ungroupable !== undefined) return <UngroupableGroup id={id} session={ungroupable} verification={verification} />;
  if (group === undefined || events === undefined) return <p>Loading the session…</p>;
  const g = group.group;
  return (
    <>
      <GroupHeading id={g.id} />
      <dl class="meta">
        <Whose who={g} />
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
                {s.tampered.length > 0 && (
                  <>
                    {' '}
                    <span class="flag deny">row altered</span>
                  </>
                )}
              </li>
            ))}
          </ul>
        </dd>
        {group.erasedNearby.length > 0 && <PartialErasureEntry nearby={group.erasedNearby} />}
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

/** The top of a group's page: the way back to the groups, and its id. */
function GroupHeading({ id }: { id: string }) {
  return (
    <>
      <p>
        <Link href="/?view=groups">← Sessions</Link>
      </p>
      <h1>
        Session <code>{id}</code>
      </h1>
    </>
  );
}

/** Whose exchanges a group is, on which connection, and their era: its first facts. */
function Whose({ who }: { who: { subject: string; email: string | null; connection: string } }) {
  return (
    <>
      <dt>User</dt>
      <dd>{person(who)}</dd>
      <dt>Connection</dt>
      <dd>{who.connection}</dd>
      <dt>Era</dt>
      <dd>modern: MCP 2026-07-28 exchanges of one principal on one connection, each naming its protocol version</dd>
    </>
  );
}

/**
 * A group whose session was erased, or cannot be read here: its exchanges cannot be read, so which were the group's
 * cannot be told. The session's facts, its erasure or why it cannot be read and what to do, its verification (which
 * needs no key), and where the rest of the group may be.
 */
function UngroupableGroup({
  id,
  session,
  verification,
}: {
  id: string;
  session: ErasedModernSession | UnreadableModernSession;
  verification: Verification | string | undefined;
}) {
  const grouped = `/?view=groups&user=${encodeURIComponent(session.subject)}&connection=${encodeURIComponent(session.connection)}`;
  return (
    <>
      <GroupHeading id={id} />
      <dl class="meta">
        <Whose who={session} />
        <dt>Recorded in</dt>
        <dd>
          <Link href={`/sessions/${encodeURIComponent(session.id)}`}>{session.id}</Link>{' '}
          <span class="hint">pooled session opened {time(session.openedAtUs)}</span> <span class={`status status-${session.status}`}>{session.status}</span>
        </dd>
        {session.erased ? (
          <ErasureEntry facts={session.erased}>
            <RestOfGroup href={grouped} />
          </ErasureEntry>
        ) : (
          <UnreadableEntry u={unreadableOf(session as UnreadableModernSession)}>
            <RestOfGroup href={grouped} />
          </UnreadableEntry>
        )}
        <dt>Integrity</dt>
        <dd>
          <Badge v={verification} />
        </dd>
      </dl>
      <p class="hint">Nothing to replay: this group's session {session.erased ? 'was erased' : 'cannot be read here'}.</p>
    </>
  );
}

/** Where the rest of a group that cannot be told apart may be. */
function RestOfGroup({ href }: { href: string }) {
  return (
    <div class="hint">
      Grouping reads the exchanges, so this group cannot be told apart. Exchanges of it recorded in other pooled sessions, if any, are in{' '}
      <Link href={href}>the groups of this user on this connection</Link>.
    </div>
  );
}
