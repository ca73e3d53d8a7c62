import type { AccessRequestRow, EventRow, KeyRow, LedgerRow, SessionQuery, SessionRow } from './types.js';

/** Mapping between the tables' snake_case rows and the store's types, shared by both backends. */

type DbValue = string | number | null | undefined;
type DbRow = Record<string, DbValue>;

function json(text: DbValue): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(String(text));
  } catch {
    return null;
  }
}

const num = (v: DbValue): number => Number(v);
const numOrNull = (v: DbValue): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: DbValue): string | null => (v === null || v === undefined ? null : String(v));

export function sessionFromDb(r: DbRow): SessionRow {
  return {
    id: String(r.id),
    instanceId: String(r.instance_id),
    connection: String(r.connection),
    subject: String(r.subject),
    email: strOrNull(r.email),
    groups: (json(r.groups) as string[] | null) ?? [],
    edge: String(r.edge),
    remoteAddress: strOrNull(r.remote_address),
    clientInfo: json(r.client_info),
    serverInfo: json(r.server_info),
    protocolVersion: strOrNull(r.protocol_version),
    openedAtUs: num(r.opened_at_us),
    closedAtUs: numOrNull(r.closed_at_us),
    status: String(r.status) as SessionRow['status'],
    closeReason: strOrNull(r.close_reason),
    eventCount: numOrNull(r.event_count),
    lastHash: strOrNull(r.last_hash),
    seal: strOrNull(r.seal),
    sealKeyId: strOrNull(r.seal_key_id),
    denials: num(r.denials),
    redactions: num(r.redactions),
  };
}

/** Column values of a new session row, in the order of `sessionColumns`. */
export const sessionColumns = [
  'id',
  'instance_id',
  'connection',
  'subject',
  'email',
  'groups',
  'edge',
  'remote_address',
  'client_info',
  'server_info',
  'protocol_version',
  'opened_at_us',
  'closed_at_us',
  'status',
  'close_reason',
  'event_count',
  'last_hash',
  'seal',
  'seal_key_id',
  'denials',
  'redactions',
] as const;

export function sessionToDb(s: SessionRow): DbValue[] {
  return [
    s.id,
    s.instanceId,
    s.connection,
    s.subject,
    s.email,
    JSON.stringify(s.groups),
    s.edge,
    s.remoteAddress,
    s.clientInfo === null || s.clientInfo === undefined ? null : JSON.stringify(s.clientInfo),
    s.serverInfo === null || s.serverInfo === undefined ? null : JSON.stringify(s.serverInfo),
    s.protocolVersion,
    s.openedAtUs,
    s.closedAtUs,
    s.status,
    s.closeReason,
    s.eventCount,
    s.lastHash,
    s.seal,
    s.sealKeyId,
    s.denials,
    s.redactions,
  ];
}

export function eventFromDb(r: DbRow): EventRow {
  return {
    sessionId: String(r.session_id),
    seq: num(r.seq),
    timeUs: num(r.time_us),
    monoUs: num(r.mono_us),
    kind: String(r.kind) as EventRow['kind'],
    direction: strOrNull(r.direction) as EventRow['direction'],
    boundary: strOrNull(r.boundary) as EventRow['boundary'],
    payload: String(r.payload),
    forwarded: strOrNull(r.forwarded),
    hash: String(r.hash),
  };
}

export function ledgerFromDb(r: DbRow): LedgerRow {
  return {
    instanceId: String(r.instance_id),
    seq: num(r.seq),
    timeUs: num(r.time_us),
    kind: String(r.kind) as LedgerRow['kind'],
    sessionId: String(r.session_id),
    detail: String(r.detail),
    hash: String(r.hash),
  };
}

export function keyFromDb(r: DbRow): KeyRow {
  return { keyId: String(r.key_id), publicKey: String(r.public_key), instanceId: String(r.instance_id), createdAtUs: num(r.created_at_us) };
}

/**
 * The WHERE clause and parameters of a session query, with placeholders made by `param` (`?` for SQLite,
 * `$n` for PostgreSQL). Newest first, keyset-paginated on (opened_at_us, id).
 */
export function sessionQuerySql(q: SessionQuery, param: (value: string | number) => string): string {
  const where: string[] = [];
  if (q.subject !== undefined) where.push(`subject = ${param(q.subject)}`);
  if (q.connection !== undefined) where.push(`connection = ${param(q.connection)}`);
  if (q.status !== undefined) where.push(`status = ${param(q.status)}`);
  if (q.fromUs !== undefined) where.push(`opened_at_us >= ${param(q.fromUs)}`);
  if (q.toUs !== undefined) where.push(`opened_at_us < ${param(q.toUs)}`);
  if (q.hadDenial !== undefined) where.push(q.hadDenial ? 'denials > 0' : 'denials = 0');
  if (q.hadRedaction !== undefined) where.push(q.hadRedaction ? 'redactions > 0' : 'redactions = 0');
  if (q.before !== undefined) {
    const t = param(q.before.openedAtUs);
    where.push(`(opened_at_us < ${t} OR (opened_at_us = ${param(q.before.openedAtUs)} AND id < ${param(q.before.id)}))`);
  }
  const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return `SELECT * FROM sessions ${clause} ORDER BY opened_at_us DESC, id DESC LIMIT ${param(q.limit)}`;
}

export function accessRequestFromDb(r: DbRow): AccessRequestRow {
  return {
    id: String(r.id),
    connection: String(r.connection),
    requesterSubject: String(r.requester_subject),
    requesterIssuer: String(r.requester_issuer),
    requesterEmail: strOrNull(r.requester_email),
    reason: String(r.reason),
    durationMs: num(r.duration_ms),
    status: String(r.status) as AccessRequestRow['status'],
    createdAtUs: num(r.created_at_us),
    decidedAtUs: numOrNull(r.decided_at_us),
    deciderSubject: strOrNull(r.decider_subject),
    deciderIssuer: strOrNull(r.decider_issuer),
    decisionNote: strOrNull(r.decision_note),
    expiresAtUs: num(r.expires_at_us),
  };
}

/** The columns of an access request, in insert order, with its values. */
export function accessRequestToDb(a: AccessRequestRow): { columns: string[]; values: Array<string | number | null> } {
  const entries: Array<[string, string | number | null]> = [
    ['id', a.id],
    ['connection', a.connection],
    ['requester_subject', a.requesterSubject],
    ['requester_issuer', a.requesterIssuer],
    ['requester_email', a.requesterEmail],
    ['reason', a.reason],
    ['duration_ms', a.durationMs],
    ['status', a.status],
    ['created_at_us', a.createdAtUs],
    ['decided_at_us', a.decidedAtUs],
    ['decider_subject', a.deciderSubject],
    ['decider_issuer', a.deciderIssuer],
    ['decision_note', a.decisionNote],
    ['expires_at_us', a.expiresAtUs],
  ];
  return { columns: entries.map(([c]) => c), values: entries.map(([, v]) => v) };
}

/** The SET clause of an access request update, with its values, given a placeholder maker. */
export function accessUpdateSql(
  to: Partial<AccessRequestRow>,
  placeholder: (v: string | number | null) => string,
): string {
  const names: Record<string, string> = {
    status: 'status',
    expiresAtUs: 'expires_at_us',
    decidedAtUs: 'decided_at_us',
    deciderSubject: 'decider_subject',
    deciderIssuer: 'decider_issuer',
    decisionNote: 'decision_note',
  };
  return Object.entries(to)
    .filter(([k, v]) => names[k] !== undefined && v !== undefined)
    .map(([k, v]) => `${names[k]} = ${placeholder(v as string | number | null)}`)
    .join(', ');
}

/** The WHERE clause of an access request query, given a placeholder maker. */
export function accessQuerySql(q: { status?: string; connection?: string; limit: number }, placeholder: (v: string | number) => string): string {
  const where: string[] = [];
  if (q.status !== undefined) where.push(`status = ${placeholder(q.status)}`);
  if (q.connection !== undefined) where.push(`connection = ${placeholder(q.connection)}`);
  return `SELECT * FROM access_requests${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at_us DESC, id DESC LIMIT ${placeholder(q.limit)}`;
}
