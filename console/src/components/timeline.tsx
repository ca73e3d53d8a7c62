import type { RpcSummary } from '../../../src/recording/transcript.js';
import { duration } from '../format';
import { JsonView, parseJson } from './json-view';

/** A recorded event as GET /api/sessions/<id>/events gives it. */
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
  /** The JSON-RPC summary the API gives of its payload. */
  rpc?: RpcSummary;
  details?: Record<string, unknown> | null;
}

/** How many events the timeline draws at first, and how many more each time it is asked. */
export const pageOfEvents = 300;

/** Requests paired with their responses: the answer to each request, and the request each answer answers (by seq). */
export interface Pairs {
  answer: Map<number, EventLine>;
  answers: Map<number, EventLine>;
}

/** Pairs requests with their responses, by direction and the client's id. */
export function pairExchanges(events: readonly EventLine[]): Pairs {
  const requests = new Map<string, EventLine>();
  const answer = new Map<number, EventLine>();
  const answers = new Map<number, EventLine>();
  for (const e of events) {
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

/** The events up to the position, the latest `visible` of them drawn, with a button to draw the `hidden` earlier ones. */
export function Timeline({
  visible,
  hidden,
  pairs,
  onShowEarlier,
  onSeek,
}: {
  visible: EventLine[];
  hidden: number;
  pairs: Pairs;
  onShowEarlier: () => void;
  onSeek: (e: EventLine) => void;
}) {
  return (
    <>
      {hidden > 0 && (
        <p>
          <button type="button" onClick={onShowEarlier}>
            Show {Math.min(hidden, pageOfEvents)} earlier events ({hidden} not shown)
          </button>
        </p>
      )}
      <ol class="timeline" aria-label="Events">
        {visible.map((e) => (
          <TimelineItem key={e.seq} e={e} answer={pairs.answer.get(e.seq)} answers={pairs.answers.get(e.seq)} onSeek={onSeek} />
        ))}
      </ol>
    </>
  );
}

/** One event on a timeline: a decision marked, a lifecycle event, or a message with its answer (or the request it answers) a click away. */
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
