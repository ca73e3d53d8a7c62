import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { get } from '../api';
import { JsonView, parseJson } from '../components/json-view';
import { Link } from '../components/link';
import { duration, person, time } from '../format';
import { type LiveEvent, useLive } from '../live';
import { ErasureEntry } from '../components/erasure';
import { UnreadableEntry } from '../components/unreadable';
import { type Unreadable, unreadableFrom } from '../unreadable';
import type { ErasureFacts } from '../../../src/recording/erasure-facts.js';

interface Session {
  id: string;
  connection: string;
  subject: string;
  email: string | null;
  groups: string[];
  status: string;
  closeReason: string | null;
  openedAtUs: number;
  closedAtUs: number | null;
  protocolVersion: string | null;
  /** modern: MCP 2026-07-28 exchanges (each names its version); legacy: a 2025-era session. */
  era: 'modern' | 'legacy';
  /** As the peers stated them in initialize: any JSON. */
  clientInfo: unknown;
  serverInfo: unknown;
  /** Columns of the session row that disagree with the recording (the fields above are the recording's). */
  tampered: Array<{ message: string }>;
  /** Erased (crypto-shredded): its data key destroyed, by whom, when and why; its payloads can never be read. */
  erased?: ErasureFacts | null;
  /** Why its recording cannot be read here (its opening), which kind, and what to do (recording/attest.ts). */
  unreadable?: string;
  unreadableKind?: 'no-kek' | 'erased' | 'altered';
  unreadableFix?: string;
}

export interface EventLine {
  seq: number;
  /** The session that recorded it (a group's events come from several). */
  session?: string;
  time: string;
  timeUs?: number;
  monoUs: number;
  kind: 'open' | 'negotiated' | 'message' | 'verdict' | 'gap' | 'truncated' | 'close';
  direction: 'toServer' | 'toClient' | null;
  boundary: 'received' | 'delivered' | 'relayed' | null;
  payload: string;
  forwarded?: string;
  rpc?: {
    kind: string;
    method?: string;
    id?: string | number | null;
    tool?: string;
    errorCode?: number;
    errorMessage?: string;
    ownRequest?: true;
    protocolVersion?: string;
    traceId?: string;
  };
  details?: Record<string, unknown> | null;
}

export interface Verification {
  /** erased: the chain and seal verify as stored, and the data key is destroyed (nothing can read the payloads). */
  status: 'verified' | 'erased' | 'unsealed' | 'deleted' | 'failed';
  events: number;
  problems: Array<{ seq?: number; message: string }>;
  notes: string[];
}

const speeds = [1, 2, 5, 10, 50];
/** How many events the timeline draws at first, and how many more each time it is asked. */
const pageOfEvents = 300;

/** Reads every event of a session after `after`, a page at a time. */
async function eventsAfter(id: string, after = -1): Promise<EventLine[]> {
  const out: EventLine[] = [];
  for (;;) {
    const page = await get<{ events: EventLine[]; next: number | null }>(`/api/sessions/${encodeURIComponent(id)}/events?after=${after}&limit=1000`);
    out.push(...page.events);
    if (page.next === null) return out;
    after = page.next;
  }
}

export function Badge({ v }: { v: Verification | undefined | string }) {
  if (v === undefined) return <span class="badge">verifying…</span>;
  if (typeof v === 'string') return <span class="badge bad">could not verify: {v}</span>;
  const label =
    v.status === 'verified'
      ? 'Verified: hash chain and seal intact'
      : v.status === 'erased'
        ? 'Verified: hash chain and seal intact; erased, unreadable for good'
        : v.status === 'unsealed'
          ? 'Chain intact, not sealed yet'
          : v.status === 'failed'
            ? 'Verification FAILED'
            : 'Deleted';
  return (
    <span
      class={`badge verify-${v.status}`}
      role="status"
      title={[...v.problems.map((p) => (p.seq === undefined ? p.message : `event ${p.seq}: ${p.message}`)), ...v.notes].join('\n')}
    >
      {label} ({v.events} events)
    </span>
  );
}

/** A peer's name and version as its initialize stated them: text whatever they sent (a client chooses its clientInfo). */
export function info(v: unknown): string {
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  const text = (x: unknown) => (x === undefined || x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x));
  return `${text(o.name) || '?'} ${text(o.version)}`.trim();
}

/** What a verdict event says, in a line; each field checked for its type (a recording holds whatever was written). */
function verdictText(d: Record<string, unknown>): string {
  const details = (typeof d.details === 'object' && d.details !== null ? d.details : {}) as Record<string, unknown>;
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const parts = [`${String(d.stage)}: ${String(d.action)}`];
  if (typeof d.reason === 'string') parts.push(d.reason);
  const redactions = list(details.redactions).filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null);
  if (redactions.length > 0)
    parts.push(
      redactions.map((r) => `masked ${String(r.detector)}${typeof r.count === 'number' && r.count > 1 ? ` ×${r.count}` : ''} at ${String(r.path)}`).join('; '),
    );
  if (details.rule) parts.push(`rule ${String(details.rule)}`);
  if (details.review) parts.push(`review ${String(details.review)}`);
  const approvers = list(details.approvers);
  if (approvers.length > 0) parts.push(`approved by ${approvers.map(String).join(', ')}`);
  if (details.rejectedBy) parts.push(`rejected by ${String(details.rejectedBy)}`);
  if (typeof details.waitedMs === 'number') parts.push(`waited ${duration(details.waitedMs)}`);
  return parts.join(' · ');
}

/** A session's exchange as a timeline that plays back at its own pace (or faster), with every decision marked. */
export function ReplayPage({ id }: { id: string }) {
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [events, setEvents] = useState<EventLine[] | undefined>(undefined);
  const [verification, setVerification] = useState<Verification | string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [unreadable, setUnreadable] = useState<Unreadable | undefined>(undefined);
  const [position, setPosition] = useState(Number.MAX_SAFE_INTEGER);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const frame = useRef<number | undefined>(undefined);
  const [windowSize, setWindowSize] = useState(pageOfEvents);
  /** The W3C trace the timeline is narrowed to, and the events of it (as the gateway groups them). */
  const [trace, setTrace] = useState('');
  const [traced, setTraced] = useState<Set<number> | undefined>(undefined);
  useEffect(() => {
    setTraced(undefined);
    if (trace === '') return;
    get<{ events: EventLine[] }>(`/api/sessions/${encodeURIComponent(id)}/events?trace=${trace}`).then(
      (r) => setTraced(new Set(r.events.map((e) => e.seq))),
      (err: Error) => setError(err.message),
    );
  }, [id, trace]);

  /** A modern (pooled) session's groups: the sessions a user sees of its client, each across every session that recorded it. */
  const [groups, setGroups] = useState<Array<{ id: string; label: string; traceId?: string; exchanges: number }> | undefined>(undefined);
  useEffect(() => {
    setGroups(undefined);
    if (session?.era !== 'modern') return;
    get<{ groups: Array<{ id: string; label: string; traceId?: string; exchanges: number }> }>(`/api/sessions/${encodeURIComponent(id)}/events?groups`).then(
      (r) => setGroups(r.groups),
      () => {},
    );
  }, [id, session?.era]);

  const verify = () => get<Verification>(`/api/sessions/${encodeURIComponent(id)}/verify`).then(setVerification, (err: Error) => setVerification(err.message));
  const readSession = () => get<{ session: Session }>(`/api/sessions/${encodeURIComponent(id)}`).then((r) => r.session);
  useEffect(() => {
    readSession().then(
      (s) => {
        setSession(s);
        // An erased session's payloads cannot be read by anyone, an unreadable one's not here: nothing to play back.
        const cannot = unreadableFrom(s);
        setUnreadable(cannot);
        if (s.erased || cannot !== undefined) setEvents([]);
        else
          eventsAfter(id).then(setEvents, (err: Error) => {
            const later = unreadableFrom(s, err);
            if (later === undefined) return setError(err.message);
            setUnreadable(later);
            setEvents([]);
          });
      },
      (err: Error) => setError(err.message),
    );
    void verify();
  }, [id]);

  // A session in progress is followed until it ends: read again as soon as the live stream says it recorded more
  // (whichever replica serves it), and once a second in any case. The session is read first and its events after,
  // so the read that sees it closed has all of them.
  const following = session?.status === 'open' && events !== undefined && unreadable === undefined;
  const wake = useRef<() => void>(() => {});
  const onLive = useCallback(
    (e: LiveEvent) => {
      if (e.type === 'session-events' && e.id === id) wake.current();
    },
    [id],
  );
  useLive(onLive);
  useEffect(() => {
    if (!following) return;
    let stopped = false;
    let after = events.at(-1)?.seq ?? -1;
    void (async () => {
      while (!stopped) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, 1000);
          wake.current = () => {
            clearTimeout(timer);
            r();
          };
        });
        try {
          const now = await readSession();
          const more = await eventsAfter(id, after);
          if (stopped) return;
          if (more.length > 0) {
            after = more.at(-1)!.seq;
            setEvents((e) => [...(e ?? []), ...more]);
          }
          if (now.status !== 'open') {
            setSession(now);
            void verify();
            return;
          }
        } catch {
          // the gateway is away for a moment: the next poll tries again
        }
      }
    })();
    return () => {
      stopped = true;
    };
  }, [following, id]);

  const end = events?.at(-1)?.monoUs ?? 0;
  // Requests paired with their responses, by direction and the client's id.
  const pairs = useMemo(() => {
    const requests = new Map<string, EventLine>();
    const answer = new Map<number, EventLine>();
    const answers = new Map<number, EventLine>();
    for (const e of events ?? []) {
      // The client's side of each exchange: what it sent (received from it) and what it got (delivered to it).
      const serverSide = (e.direction === 'toServer' && e.boundary === 'delivered') || (e.direction === 'toClient' && e.boundary === 'received');
      if (e.kind !== 'message' || serverSide || e.rpc?.id === undefined || e.rpc.id === null) continue;
      const key = `${e.direction}:${JSON.stringify(e.rpc.id)}`;
      if (e.rpc.kind === 'request') requests.set(key, e);
      else if (e.rpc.kind === 'response' || e.rpc.kind === 'error') {
        const request = requests.get(`${e.direction === 'toClient' ? 'toServer' : 'toClient'}:${JSON.stringify(e.rpc.id)}`);
        if (request !== undefined && !answer.has(request.seq)) {
          answer.set(request.seq, e);
          answers.set(e.seq, request);
        }
      }
    }
    return { answer, answers };
  }, [events]);

  useEffect(() => {
    if (!playing) return;
    let last = performance.now();
    const tick = (now: number) => {
      const elapsedUs = (now - last) * 1000 * speed;
      last = now;
      let stop = false;
      setPosition((p) => {
        const next = p + elapsedUs;
        if (next >= end) stop = true;
        return Math.min(next, end);
      });
      if (stop) setPlaying(false);
      else frame.current = requestAnimationFrame(tick);
    };
    frame.current = requestAnimationFrame(tick);
    return () => {
      if (frame.current !== undefined) cancelAnimationFrame(frame.current);
    };
  }, [playing, speed, end]);

  if (error !== undefined) return <Alert message={error} />;
  if (session === undefined || events === undefined) return <p>Loading the session…</p>;

  const at = Math.min(position, end);
  const shown = events.filter((e) => e.monoUs <= at && (traced === undefined || traced.has(e.seq)));
  const traces = [...new Set(events.map((e) => e.rpc?.traceId).filter((t): t is string => t !== undefined))];
  // A long session draws its latest events up to the position, and earlier ones on request.
  const hidden = Math.max(0, shown.length - windowSize);
  const visible = hidden > 0 ? shown.slice(hidden) : shown;
  const play = () => {
    if (at >= end) setPosition(0);
    setPlaying(!playing);
  };
  const step = (dir: 1 | -1) => {
    setPlaying(false);
    const times = events.map((e) => e.monoUs);
    const target = dir === 1 ? times.find((t) => t > at) : [...times].reverse().find((t) => t < at);
    setPosition(target ?? (dir === 1 ? end : 0));
  };
  const seekTo = (e: EventLine) => {
    setPlaying(false);
    setPosition(e.monoUs);
    const index = events.findIndex((x) => x.seq === e.seq);
    const through = events.filter((x) => x.monoUs <= e.monoUs).length;
    if (through - index > windowSize) setWindowSize(through - index);
    requestAnimationFrame(() => document.getElementById(`event-${e.seq}`)?.scrollIntoView({ block: 'center' }));
  };

  const facts = (
    <>
      <p>
        <Link href="/">← Sessions</Link>
      </p>
      <h1>
        Session <code>{session.id}</code>
      </h1>
      <dl class="meta">
        <dt>User</dt>
        <dd>
          {person(session)} <span class="hint">({session.groups.join(', ') || 'no groups'})</span>
        </dd>
        <dt>Connection</dt>
        <dd>{session.connection}</dd>
        <dt>Opened</dt>
        <dd>{time(session.openedAtUs)}</dd>
        <dt>Status</dt>
        <dd>
          <span class={`status status-${session.status}`}>{session.status}</span>
          {session.closeReason ? ` — ${session.closeReason}` : ''}
          {following && <span class="hint"> · following live</span>}
        </dd>
        <dt>Era</dt>
        <dd>
          {session.era === 'modern'
            ? 'modern: MCP 2026-07-28 exchanges of one principal on one connection, each naming its protocol version'
            : `legacy: a 2025-era session, every exchange in MCP ${session.protocolVersion ?? '?'}`}
        </dd>
        {groups !== undefined && groups.length > 0 && (
          <>
            <dt>Groups</dt>
            <dd>
              <ul class="plain">
                {groups.map((g) => (
                  <li key={g.id}>
                    <Link href={`/sessions/${encodeURIComponent(g.id)}`}>{g.traceId !== undefined ? `trace ${g.traceId}` : `group ${g.label}`}</Link>{' '}
                    <span class="hint">
                      {g.exchanges} exchange{g.exchanges === 1 ? '' : 's'} here; the group may go on in other pooled sessions
                    </span>
                  </li>
                ))}
              </ul>
            </dd>
          </>
        )}
        <dt>Client / server</dt>
        <dd>
          {info(session.clientInfo)} → {info(session.serverInfo)} (MCP {session.protocolVersion ?? '?'})
        </dd>
        {session.erased && <ErasureEntry facts={session.erased} />}
        {unreadable !== undefined && <UnreadableEntry u={unreadable} />}
        <dt>Integrity</dt>
        <dd>
          <Badge v={verification} />
          {/* An erased session's opening event cannot be read, so the row is not checked against it: not a tampering. */}
          {!session.erased && session.tampered.map((m) => <div class="flag deny">{m.message}</div>)}
        </dd>
      </dl>
    </>
  );
  // Its payloads cannot be read by anyone (erased), or not here: the facts and the verification are all there is.
  if (session.erased || unreadable !== undefined)
    return (
      <>
        {facts}
        <p class="hint">Nothing to replay: this session {session.erased ? 'was erased' : 'cannot be read here'}.</p>
      </>
    );

  return (
    <>
      {facts}
      <p>
        <a class="button" href={`/api/sessions/${encodeURIComponent(session.id)}/export`} download={`portcullis-session-${session.id}.jsonl`}>
          Export JSONL
        </a>
      </p>
      <div class="player" role="group" aria-label="Replay controls">
        <button type="button" class="primary" onClick={play} aria-pressed={playing}>
          {playing ? 'Pause' : at >= end ? 'Replay from start' : 'Play'}
        </button>
        <button type="button" onClick={() => step(-1)} aria-label="Previous event">
          ◀
        </button>
        <button type="button" onClick={() => step(1)} aria-label="Next event">
          ▶
        </button>
        <label>
          Speed
          <select value={String(speed)} onChange={(e) => setSpeed(Number((e.currentTarget as HTMLSelectElement).value))}>
            {speeds.map((s) => (
              <option key={s} value={String(s)}>
                {s}×
              </option>
            ))}
          </select>
        </label>
        <label class="seek">
          Position
          <input
            type="range"
            min={0}
            max={Math.max(end, 1)}
            step={1}
            value={at}
            aria-valuetext={`${duration(at / 1000)} of ${duration(end / 1000)}`}
            onInput={(e) => {
              setPlaying(false);
              setPosition(Number((e.currentTarget as HTMLInputElement).value));
            }}
          />
        </label>
        {traces.length > 0 && (
          <label>
            Trace
            <select value={trace} onChange={(e) => setTrace((e.currentTarget as HTMLSelectElement).value)}>
              <option value="">every exchange</option>
              {traces.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
        )}
        <span class="clock">
          {duration(at / 1000)} / {duration(end / 1000)} · {shown.length} of {events.length} events
        </span>
      </div>
      {hidden > 0 && (
        <p>
          <button type="button" onClick={() => setWindowSize(windowSize + pageOfEvents)}>
            Show {Math.min(hidden, pageOfEvents)} earlier events ({hidden} not shown)
          </button>
        </p>
      )}
      <ol class="timeline" aria-label="Events">
        {visible.map((e) => (
          <TimelineItem key={e.seq} e={e} answer={pairs.answer.get(e.seq)} answers={pairs.answers.get(e.seq)} onSeek={seekTo} />
        ))}
      </ol>
    </>
  );
}

export function TimelineItem({
  e,
  answer,
  answers,
  onSeek,
  anchor = `event-${e.seq}`,
}: {
  e: EventLine;
  answer?: EventLine | undefined;
  answers?: EventLine | undefined;
  onSeek: (e: EventLine) => void;
  /** The element id to scroll to (unique on the page). */
  anchor?: string;
}) {
  const when = <span class="t">+{duration(e.monoUs / 1000)}</span>;
  if (e.kind === 'verdict') {
    const d = (e.details ?? {}) as Record<string, unknown>;
    const redaction = Array.isArray((d.details as { redactions?: unknown } | undefined)?.redactions);
    const cls = redaction ? 'redaction' : d.action === 'answer' ? 'denial' : d.action === 'hold' ? 'hold' : 'verdict';
    return (
      <li id={anchor} class={`ev marker ${cls}`}>
        {when} <strong>{redaction ? 'Redacted' : d.action === 'answer' ? 'Refused' : d.action === 'hold' ? 'Held for review' : 'Decision'}</strong>{' '}
        {verdictText(d)}
      </li>
    );
  }
  if (e.kind !== 'message') {
    return (
      <li id={anchor} class="ev lifecycle">
        {when} <strong>{e.kind}</strong> {e.details ? <JsonView value={e.details} openDepth={0} /> : null}
      </li>
    );
  }
  const r = e.rpc ?? { kind: 'invalid' };
  const arrow = e.direction === 'toServer' ? 'client → server' : 'server → client';
  const parsed = parseJson(e.payload);
  const digestOnly = r.kind === 'invalid' && typeof parsed === 'object' && parsed !== null && 'withheld' in parsed && 'digest' in parsed;
  const title = digestOnly
    ? 'the server’s original, as a digest only (masking changed it)'
    : r.kind === 'request'
      ? `${r.method}${r.tool ? ` ${r.tool}` : ''} #${String(r.id)}${r.protocolVersion ? ` · MCP ${r.protocolVersion}` : ''}`
      : r.kind === 'notification'
        ? String(r.method)
        : r.kind === 'error'
          ? `error ${r.errorCode ?? ''} #${String(r.id)}`
          : r.kind === 'response'
            ? r.ownRequest
              ? `answer to the gateway’s own request #${String(r.id)} (digest only)`
              : `result #${String(r.id)}`
            : 'not JSON-RPC';
  return (
    <li id={anchor} class={`ev msg ${e.direction ?? ''} ${r.kind}`}>
      <div class="ev-head">
        {when} <span class="dir">{arrow}</span> <strong>{title}</strong>
        {r.traceId !== undefined && (
          <span class="tag" title="the W3C trace the client says this request belongs to (grouping only)">
            trace {r.traceId.slice(0, 8)}…
          </span>
        )}
        {e.boundary === 'delivered' && <span class="tag">as delivered, after the stages</span>}
        {e.boundary === 'received' && <span class="tag">as received, before the stages</span>}
        {answer !== undefined && (
          <button type="button" class="link" onClick={() => onSeek(answer)}>
            answered in {duration((answer.monoUs - e.monoUs) / 1000)} (event {answer.seq})
          </button>
        )}
        {answers !== undefined && (
          <button type="button" class="link" onClick={() => onSeek(answers)}>
            answers event {answers.seq}
          </button>
        )}
      </div>
      <JsonView value={parsed} openDepth={r.kind === 'response' ? 3 : 2} />
      {e.forwarded !== undefined && e.forwarded !== e.payload && (
        <details class="forwarded">
          <summary>As forwarded</summary>
          <JsonView value={parseJson(e.forwarded)} />
        </details>
      )}
    </li>
  );
}
