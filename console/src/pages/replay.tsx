import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { get } from '../api';
import { Player } from '../components/player';
import { type Session, SessionFacts, type SessionGroupLink } from '../components/session-facts';
import { type EventLine, pageOfEvents, pairExchanges, Timeline } from '../components/timeline';
import type { Verification } from '../components/verification';
import { type LiveEvent, useLive } from '../live';
import { type Unreadable, unreadableFrom } from '../unreadable';

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
  const [groups, setGroups] = useState<SessionGroupLink[] | undefined>(undefined);
  useEffect(() => {
    setGroups(undefined);
    if (session?.era !== 'modern') return;
    get<{ groups: SessionGroupLink[] }>(`/api/sessions/${encodeURIComponent(id)}/events?groups`).then(
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
  const pairs = useMemo(() => pairExchanges(events ?? []), [events]);

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

  const facts = <SessionFacts session={session} following={following} groups={groups} unreadable={unreadable} verification={verification} />;
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
      <Player
        playing={playing}
        at={at}
        end={end}
        speed={speed}
        trace={trace}
        traces={traces}
        shown={shown.length}
        total={events.length}
        onPlay={play}
        onStep={step}
        onSpeed={setSpeed}
        onPosition={(to) => {
          setPlaying(false);
          setPosition(to);
        }}
        onTrace={setTrace}
      />
      <Timeline visible={visible} hidden={hidden} pairs={pairs} onShowEarlier={() => setWindowSize(windowSize + pageOfEvents)} onSeek={seekTo} />
    </>
  );
}
