import { eraOfEdge, type EventRow, type SessionRow } from '../store/types.js';
import { exchangeMeta } from './exchanges.js';

/**
 * How recorded events read to a person (`sessions show`, `replay`) and to a machine (the JSON-RPC summary in
 * exports and the API): who sent what to whom, which method, which id, which tool, and a short excerpt.
 */

export interface RpcSummary {
  kind: 'request' | 'response' | 'notification' | 'error' | 'invalid';
  method?: string;
  id?: string | number | null;
  /** For tools/call: the tool's name. */
  tool?: string;
  /** For an error response: its code and message. */
  errorCode?: number;
  errorMessage?: string;
  /**
   * The server's answer to a request the gateway sent on its own behalf (a tools/list after list_changed): never
   * shown to the client, so recorded as its digest only; `id` is the gateway's request id.
   */
  ownRequest?: true;
  /** A request made in MCP 2026-07-28: the protocol version its `_meta` names (a 2025-era request has its session's). */
  protocolVersion?: string;
  /** The W3C trace id of the request's `_meta.traceparent`, when it carries a valid one (grouping only). */
  traceId?: string;
}

/**
 * A recorded payload is whatever crossed the wire: any JSON at all. Every reader here takes it field by field, each
 * checked for its type, so that a message of an unexpected shape (an elicitation answer, whose `content` is an
 * object; a `params` of null) is shown as it is instead of crashing the transcript.
 */
function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Where masking happened, from a verdict's redactions: `masked payment-card ×2 at $.result…`. */
function maskedAt(details: unknown): string {
  return list(record(details)?.redactions)
    .map(record)
    .filter((r) => r !== undefined)
    .map((r) => `\n      masked ${shown(r.detector)}${typeof r.count === 'number' && r.count > 1 ? ` ×${r.count}` : ''} at ${shown(r.path)}`)
    .join('');
}

/** What a guardrail or pinning verdict says: the rule, the review and who decided it, what changed in a tool list. */
function decidedBy(details: unknown): string {
  const d = record(details) ?? {};
  const parts: string[] = [];
  if (d.rule !== undefined) parts.push(`rule ${shown(d.rule)}`);
  if (d.review !== undefined) parts.push(`review ${shown(d.review)}`);
  const approvers = list(d.approvers);
  if (approvers.length > 0) parts.push(`approved by ${approvers.map(String).join(', ')}`);
  if (d.rejectedBy !== undefined) parts.push(`rejected by ${shown(d.rejectedBy)}`);
  if (typeof d.waitedMs === 'number') parts.push(`waited ${d.waitedMs} ms`);
  const changes = list(d.changes).map((c) => record(c) ?? {});
  if (changes.length > 0) parts.push(`tools ${changes.map((c) => `${shown(c.tool)} ${shown(c.change)}`).join(', ')}`);
  return parts.length === 0 ? '' : ` [${parts.join('; ')}]`;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    return record(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export function summarizeRpc(payload: string): RpcSummary {
  const m = parseObject(payload);
  if (m === undefined) return { kind: 'invalid' };
  if ('withheld' in m && 'digest' in m) return { kind: 'invalid' };
  if (typeof m.gatewayRequest === 'string' && m.jsonrpc === undefined) return { kind: 'response', id: m.gatewayRequest, ownRequest: true };
  const id = typeof m.id === 'string' || typeof m.id === 'number' || m.id === null ? m.id : undefined;
  if (typeof m.method === 'string') {
    const params = record(m.params);
    const summary: RpcSummary = id === undefined ? { kind: 'notification', method: m.method } : { kind: 'request', method: m.method, id };
    if (m.method === 'tools/call' && typeof params?.name === 'string') summary.tool = params.name;
    if (id !== undefined) Object.assign(summary, exchangeMeta(m));
    return summary;
  }
  const error = record(m.error);
  if (error !== undefined || m.error !== undefined) {
    return {
      kind: 'error',
      id: id ?? null,
      ...(typeof error?.code === 'number' ? { errorCode: error.code } : {}),
      ...(typeof error?.message === 'string' ? { errorMessage: error.message } : {}),
    };
  }
  return { kind: 'response', id: id ?? null };
}

const arrows: Record<string, string> = {
  'toServer:received': 'client  → gateway         ',
  'toServer:delivered': '          gateway → server',
  'toServer:relayed': 'client  → gateway → server',
  'toClient:received': 'server  → gateway         ',
  'toClient:delivered': '          gateway → client',
  'toClient:relayed': 'server  → gateway → client',
};

/**
 * Recorded text as one line a terminal shows as text: line breaks as ⏎, every other control character (an escape
 * sequence a hostile server planted to rewrite the screen) as its \u escape.
 */
export function shown(value: unknown): string {
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => (c === '\n' ? '⏎' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** A peer's name and version as its initialize stated them (a client chooses its clientInfo: any JSON), as one line. */
export function peerInfo(v: unknown): string {
  const o = record(v) ?? {};
  const text = (x: unknown) => (x === undefined || x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x));
  return shown(`${text(o.name) || '?'} ${text(o.version)}`.trim());
}

function excerpt(value: unknown, max: number): string {
  const raw = typeof value === 'string' ? value : JSON.stringify(value);
  if (raw === undefined) return '';
  const text = shown(raw);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The interesting part of a message in a line: params of a request, result or error of a response. */
function messageDetail(payload: string, max: number): string {
  const m = parseObject(payload);
  if (m === undefined) return excerpt(payload, max);
  if ('withheld' in m) return `[withheld: only the digest ${shown(m.digest).slice(0, 20)}… is kept]`;
  if (typeof m.gatewayRequest === 'string' && m.jsonrpc === undefined) {
    return `[the answer to the gateway's own request, never shown to the client: ${shown(m.bytes)} bytes, only the digest ${shown(m.digest).slice(0, 20)}… is kept]`;
  }
  if (m.params !== undefined) {
    const p = record(m.params);
    if (typeof p?.name === 'string' && p.arguments !== undefined) return excerpt(p.arguments, max);
    return excerpt(m.params, max);
  }
  if (m.error !== undefined) return excerpt(m.error, max);
  // A tool result's text blocks; any other result (an elicitation answer's `content` is an object) as it is.
  const texts = list(record(m.result)?.content)
    .map(record)
    .filter((c) => c?.type === 'text' && typeof c.text === 'string')
    .map((c) => c!.text as string);
  if (texts.length > 0) return excerpt(texts.join(' '), max);
  return excerpt(m.result, max);
}

/** A message's text in the client's numbering of ids: what it sent (to the server) or what it got (from the server). */
export function clientView(e: EventRow): string {
  return e.boundary === 'relayed' && e.direction === 'toClient' && e.forwarded !== null ? e.forwarded : e.payload;
}

export function formatOffset(monoUs: number): string {
  return `+${(monoUs / 1e6).toFixed(3)}s`.padStart(10);
}

/** One line of a transcript. `width` bounds the excerpt. */
export function describeEvent(e: EventRow, width = 160): string {
  const at = formatOffset(e.monoUs);
  if (e.kind === 'message') {
    const text = clientView(e);
    const s = summarizeRpc(text);
    const arrow = arrows[`${e.direction}:${e.boundary}`] ?? `${e.direction} ${e.boundary}`;
    const what =
      s.kind === 'request'
        ? `request ${shown(s.method)} #${shown(s.id)}${s.tool ? ` ${shown(s.tool)}` : ''}${s.protocolVersion ? ` @${shown(s.protocolVersion)}` : ''}`
        : s.kind === 'notification'
          ? `notify  ${shown(s.method)}`
          : s.kind === 'error'
            ? `error   #${shown(s.id)} ${s.errorCode ?? ''}`
            : s.kind === 'response'
              ? `${s.ownRequest ? 'answer ' : 'result '} #${shown(s.id)}`
              : 'message';
    return `${at}  ${arrow}  ${what.padEnd(36)} ${messageDetail(text, width)}${s.traceId ? `  (trace ${s.traceId})` : ''}`;
  }
  // An unreadable payload still gets a line; verify says whether it was altered.
  const details = parseObject(e.payload) ?? {};
  switch (e.kind) {
    case 'open': {
      const who = record(details.identity);
      return `${at}  ■ opened   ${typeof who?.subject === 'string' ? shown(who.subject) : '?'} → ${shown(details.connection)} over ${shown(details.edge)}${details.remoteAddress ? ` from ${shown(details.remoteAddress)}` : ''}`;
    }
    case 'negotiated': {
      return `${at}  ■ agreed   protocol ${shown(details.protocolVersion)}; client ${peerInfo(details.clientInfo)}; server ${peerInfo(details.serverInfo)}`;
    }
    case 'verdict':
      return `${at}  ⚑ ${shown(details.stage)} ${shown(details.action)}${details.method ? ` ${shown(details.method)}` : ''}${details.messageId !== undefined ? ` #${shown(details.messageId)}` : ''}${details.reason ? `: ${shown(details.reason)}` : ''}${details.sensitive ? ' (sensitive content removed)' : ''}${decidedBy(details.details)}${maskedAt(details.details)}`;
    case 'gap':
      return `${at}  ✂ gap      ${shown(details.lost)} events lost: ${shown(details.reason)}`;
    case 'truncated':
      return `${at}  ✂ cut off  server → gateway  ${shown(details.bytes)} bytes of an unfinished message (${shown(details.reason)}): ${
        typeof details.partial === 'string' ? excerpt(details.partial, width) : `[withheld: only the digest ${shown(details.digest).slice(0, 20)}… is kept]`
      }`;
    case 'close':
      return `${at}  ■ ${details.status === 'cut-off' ? 'cut off ' : 'closed  '} ${shown(details.reason)}`;
    default:
      return `${at}  ${shown(e.kind)} ${excerpt(e.payload, width)}`;
  }
}

export function isoUs(us: number | null): string {
  if (us === null) return '';
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 23)}${String(us % 1000).padStart(3, '0')}Z`;
}

export function durationOf(s: Pick<SessionRow, 'openedAtUs' | 'closedAtUs'>, nowUs: number): string {
  const us = (s.closedAtUs ?? nowUs) - s.openedAtUs;
  const secs = us / 1e6;
  if (secs < 60) return `${secs.toFixed(1)}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m${String(Math.floor(secs % 60)).padStart(2, '0')}s`;
  return `${Math.floor(secs / 3600)}h${String(Math.floor((secs % 3600) / 60)).padStart(2, '0')}m`;
}

/** The session's facts as `sessions show` prints them above its transcript. */
export function describeSession(s: SessionRow, nowUs: number): string[] {
  return [
    `Session     ${s.id}`,
    `Status      ${s.status}${s.closeReason ? ` (${shown(s.closeReason)})` : ''}`,
    `User        ${shown(s.subject)}${s.email ? ` <${shown(s.email)}>` : ''}${s.groups.length ? `  groups: ${shown(s.groups.join(', '))}` : ''}`,
    `Connection  ${shown(s.connection)} over ${shown(s.edge)}${s.remoteAddress ? ` from ${shown(s.remoteAddress)}` : ''}`,
    eraOfEdge(s.edge) === 'modern'
      ? `Era         modern (MCP 2026-07-28): each exchange names its protocol version; the gateway's own session with the server agreed ${shown(s.protocolVersion ?? '-')}`
      : `Era         legacy (MCP 2025-era session): every exchange in the protocol initialize agreed, ${shown(s.protocolVersion ?? '-')}`,
    `Client      ${s.clientInfo ? peerInfo(s.clientInfo) : '-'}    Server  ${s.serverInfo ? peerInfo(s.serverInfo) : '-'}    Protocol  ${shown(s.protocolVersion ?? '-')}`,
    `Opened      ${isoUs(s.openedAtUs)}    ${s.closedAtUs ? `Closed  ${isoUs(s.closedAtUs)}` : 'still open'}    Duration  ${durationOf(s, nowUs)}`,
    `Recording   ${s.eventCount ?? '?'} events${s.seal ? `, sealed by key ${s.sealKeyId}` : ', not sealed yet'}; gateway ${s.instanceId}${s.denials ? `; ${s.denials} refused` : ''}${s.redactions ? `; ${s.redactions} redactions` : ''}`,
  ];
}
