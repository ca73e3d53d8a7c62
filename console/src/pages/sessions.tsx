import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { get, type Me, query } from '../api';
import { Link } from '../components/link';
import { person, time } from '../format';
import { type LiveEvent, useLive } from '../live';
import { navigate } from '../router';
import type { AttestedSession } from '../../../src/recording/attest.js';
import type { ErasureFacts } from '../../../src/recording/erasure-facts.js';
import type { SessionRow } from '../../../src/store/types.js';
import { FlagLink } from '../components/flag-link';
import { erasureLabel, erasureSummary } from '../erasure';
import { type GroupListing, GroupsTable } from './groups';

/** A recorded session as the list shows it: attested, and erased (who, when, why) or not. */
type ListedSession = AttestedSession & { erased?: ErasureFacts | null };

/** A session in progress, as the live list shows it. */
type LiveRow = Pick<SessionRow, 'id' | 'connection' | 'subject' | 'email' | 'openedAtUs'>;

interface Filters {
  /** sessions: the recorded sessions (legacy ones, and the modern edge's pooled ones); groups: modern clients' exchanges, grouped. */
  view: string;
  q: string;
  user: string;
  connection: string;
  status: string;
  era: string;
  since: string;
  until: string;
  denied: boolean;
  redacted: boolean;
}

const empty: Filters = { view: '', q: '', user: '', connection: '', status: '', era: '', since: '', until: '', denied: false, redacted: false };

function filtersFromUrl(): Filters {
  const p = new URLSearchParams(location.search);
  return {
    view: p.get('view') === 'groups' ? 'groups' : '',
    q: p.get('q') ?? '',
    user: p.get('user') ?? '',
    connection: p.get('connection') ?? '',
    status: p.get('status') ?? '',
    era: p.get('era') ?? '',
    since: p.get('since') ?? '',
    until: p.get('until') ?? '',
    denied: p.get('denied') === 'true',
    redacted: p.get('redacted') === 'true',
  };
}

/** A datetime-local value as the API's time (ISO, in the viewer's zone). */
const isoOf = (local: string) => (local === '' ? undefined : new Date(local).toISOString());

/** The sessions a person may see: those in progress, live, and the recorded ones, filtered and paged on the server. */
export function SessionsPage({ me }: { me: Me }) {
  const [filters, setFilters] = useState<Filters>(filtersFromUrl);
  const [draft, setDraft] = useState<Filters>(filters);
  const [page, setPage] = useState<{ rows: ListedSession[]; next: string | null } | undefined>(undefined);
  const [groups, setGroups] = useState<GroupListing | undefined>(undefined);
  const [cursors, setCursors] = useState<string[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [live, setLive] = useState<LiveRow[]>([]);

  const load = (f: Filters, cursor: string | undefined) => {
    setError(undefined);
    if (f.view === 'groups') {
      // A group has no cursor: the newest 200, narrowed by the filters that apply to it.
      const params = { user: f.user, connection: f.connection, since: isoOf(f.since), until: isoOf(f.until), limit: 200 };
      get<GroupListing>(`/api/sessions/groups${query(params)}`).then(setGroups, (err: Error) => setError(err.message));
      return;
    }
    const params = {
      q: f.q,
      user: f.user,
      connection: f.connection,
      status: f.status,
      era: f.era,
      since: isoOf(f.since),
      until: isoOf(f.until),
      denied: f.denied ? 'true' : undefined,
      redacted: f.redacted ? 'true' : undefined,
      limit: 50,
      cursor,
    };
    get<{ sessions: ListedSession[]; next: string | null }>(`/api/sessions${query(params)}`).then(
      (r) => setPage({ rows: r.sessions, next: r.next }),
      (err: Error) => setError(err.message),
    );
  };
  useEffect(() => load(filters, cursors.at(-1)), [filters, cursors]);
  // Sessions in progress: a snapshot from the store (every gateway's), kept current by this gateway's live events,
  // and taken again every 30 s (sessions on other gateways, anything missed). An event may arrive before the
  // snapshot it is newer than, so what was heard is kept and applied to every snapshot.
  const heard = useRef({ snapshot: [] as LiveRow[], opened: new Map<string, LiveRow>(), closed: new Set<string>() });
  const showLive = useCallback(() => {
    const h = heard.current;
    const rows = new Map<string, LiveRow>();
    for (const r of [...h.snapshot, ...h.opened.values()]) if (!h.closed.has(r.id)) rows.set(r.id, r);
    setLive([...rows.values()].sort((a, b) => b.openedAtUs - a.openedAtUs));
  }, []);
  useEffect(() => {
    const refresh = () =>
      get<{ sessions: SessionRow[] }>('/api/sessions?status=open&limit=100').then(
        (r) => {
          heard.current.snapshot = r.sessions;
          showLive();
        },
        () => {},
      );
    void refresh();
    const timer = setInterval(() => void refresh(), 30_000);
    return () => clearInterval(timer);
  }, [showLive]);

  const onLive = useCallback(
    (e: LiveEvent) => {
      if (e.type === 'session-opened') {
        const s = e.session;
        heard.current.opened.set(s.id, { id: s.id, connection: s.connection, subject: s.subject, email: s.email, openedAtUs: Date.parse(s.openedAt) * 1000 });
      } else if (e.type === 'session-closed') {
        heard.current.closed.add(e.id);
        heard.current.opened.delete(e.id);
      } else return;
      showLive();
    },
    [showLive],
  );
  useLive(onLive);

  const apply = (e: Event) => {
    e.preventDefault();
    setCursors([]);
    setFilters(draft);
    const params = { ...draft, denied: draft.denied ? 'true' : undefined, redacted: draft.redacted ? 'true' : undefined };
    history.replaceState(null, '', `/${query(params)}`);
  };
  const field = (name: keyof Filters) => ({
    value: draft[name] as string,
    onInput: (e: Event) => setDraft({ ...draft, [name]: (e.currentTarget as HTMLInputElement).value }),
  });
  const check = (name: 'denied' | 'redacted') => ({
    checked: draft[name],
    onChange: (e: Event) => setDraft({ ...draft, [name]: (e.currentTarget as HTMLInputElement).checked }),
  });

  return (
    <>
      <h1>Sessions</h1>
      <p class="hint">{me.roles.auditor ? 'Everyone’s sessions (you are an auditor).' : 'Your own sessions. Auditors see everyone’s.'}</p>
      <section aria-labelledby="live-heading" class="live">
        <h2 id="live-heading">
          In progress{' '}
          <span class="badge" aria-label={`${live.length} open`}>
            {live.length}
          </span>
        </h2>
        {live.length === 0 ? (
          <p class="hint">No session is open right now. New ones appear here as they start.</p>
        ) : (
          <ul class="live-list" aria-live="polite">
            {live.map((s) => (
              <li key={s.id}>
                <span class="dot" aria-hidden="true" /> <Link href={`/sessions/${encodeURIComponent(s.id)}`}>{s.connection}</Link> · {person(s)} · since{' '}
                {time(s.openedAtUs)}
              </li>
            ))}
          </ul>
        )}
      </section>
      <form class="filters" onSubmit={apply} aria-label="Filter sessions">
        <label>
          Show
          <select name="view" value={draft.view} onChange={(e) => setDraft({ ...draft, view: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">recorded sessions</option>
            <option value="groups">modern exchanges, grouped</option>
          </select>
        </label>
        {draft.view !== 'groups' && (
          <label>
            Search <input type="search" name="q" placeholder="user, connection or id" {...field('q')} />
          </label>
        )}
        {me.roles.auditor && (
          <label>
            User <input name="user" {...field('user')} />
          </label>
        )}
        <label>
          Connection <input name="connection" {...field('connection')} />
        </label>
        {draft.view !== 'groups' && (
          <>
            <label>
              Status
              <select name="status" value={draft.status} onChange={(e) => setDraft({ ...draft, status: (e.currentTarget as HTMLSelectElement).value })}>
                <option value="">any</option>
                <option value="open">open</option>
                <option value="closed">closed</option>
                <option value="cut-off">cut off</option>
              </select>
            </label>
            <label>
              Era
              <select name="era" value={draft.era} onChange={(e) => setDraft({ ...draft, era: (e.currentTarget as HTMLSelectElement).value })}>
                <option value="">any</option>
                <option value="modern">modern (2026-07-28)</option>
                <option value="legacy">legacy (2025-era session)</option>
              </select>
            </label>
          </>
        )}
        <label>
          From <input type="datetime-local" name="since" {...field('since')} />
        </label>
        <label>
          To <input type="datetime-local" name="until" {...field('until')} />
        </label>
        {draft.view !== 'groups' && (
          <>
            <label class="check">
              <input type="checkbox" name="denied" {...check('denied')} /> had a denial
            </label>
            <label class="check">
              <input type="checkbox" name="redacted" {...check('redacted')} /> had a redaction
            </label>
          </>
        )}
        <button type="submit" class="primary">
          Apply
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(empty);
            setCursors([]);
            setFilters(empty);
            history.replaceState(null, '', '/');
          }}
        >
          Clear
        </button>
      </form>
      <Alert message={error} />
      {filters.view === 'groups' ? (
        <GroupsTable groups={groups} />
      ) : page === undefined ? (
        <p>Loading…</p>
      ) : page.rows.length === 0 ? (
        <p>No session matches.</p>
      ) : (
        <table class="sessions">
          <caption class="visually-hidden">Recorded sessions, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Opened</th>
              <th scope="col">User</th>
              <th scope="col">Connection</th>
              <th scope="col">Era</th>
              <th scope="col">Status</th>
              <th scope="col">Events</th>
              <th scope="col">Denials</th>
              <th scope="col">Redactions</th>
            </tr>
          </thead>
          <tbody>
            {page.rows.map((s) => (
              <tr key={s.id} onClick={() => navigate(`/sessions/${encodeURIComponent(s.id)}`)}>
                <td>
                  <Link href={`/sessions/${encodeURIComponent(s.id)}`}>{time(s.openedAtUs)}</Link>
                </td>
                <td>{person(s)}</td>
                <td>{s.connection}</td>
                <td title={s.era === 'modern' ? 'MCP 2026-07-28 exchanges, grouped per principal and connection' : 'a 2025-era MCP session'}>
                  {s.era}
                  {s.era === 'legacy' && s.protocolVersion ? <span class="hint"> {s.protocolVersion}</span> : null}
                </td>
                <td>
                  <span class={`status status-${s.status}`}>{s.status}</span>
                  {s.erased && (
                    <>
                      {' '}
                      <FlagLink href={`/sessions/${encodeURIComponent(s.id)}`} label={erasureLabel(s.erased)} summary={erasureSummary(s.erased)} />
                    </>
                  )}
                  {!s.erased && s.tampered.length > 0 && (
                    // User and connection above are the recording's; the row claimed otherwise.
                    <>
                      {' '}
                      <span class="flag deny" title={s.tampered.map((m) => m.message).join('\n')}>
                        row altered
                      </span>
                    </>
                  )}
                </td>
                <td>{s.eventCount ?? '…'}</td>
                {s.status === 'open' ? (
                  <td colSpan={2} class="hint">
                    counted when it ends
                  </td>
                ) : (
                  <>
                    <td>{s.denials > 0 ? <span class="flag deny">{s.denials}</span> : 0}</td>
                    <td>{s.redactions > 0 ? <span class="flag redact">{s.redactions}</span> : 0}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {filters.view !== 'groups' && (
        <nav class="pager" aria-label="Pages">
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            ← Newer
          </button>
          <span>Page {cursors.length + 1}</span>
          <button type="button" disabled={!page?.next} onClick={() => page?.next && setCursors([...cursors, page.next])}>
            Older →
          </button>
        </nav>
      )}
    </>
  );
}
