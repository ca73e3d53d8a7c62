import type { AccessRequestRow, AgentRow, ConsoleLoginRow, ConsoleSessionRow, EventRow, KeyRow, LedgerRow, ReviewApproval, ReviewQuery, ReviewRow, ReviewStatus, ReviewUpdate, SessionQuery, SessionRow, ToolPinReason, ToolPinRow, ToolPinUpdate } from './types.js';

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
    issuer: strOrNull(r.issuer),
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
  'issuer',
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
    s.issuer,
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

/** How a backend finds a LIKE pattern (escaped with \\) in a session's user, e-mail, connection or id, ignoring case. */
export type SessionTextMatch = (pattern: string, param: (value: string | number) => string) => string;

/**
 * SQLite: its LIKE ignores case for ASCII letters (and only those, as its lower() does), so the columns are compared
 * as stored, inside the time index, and the pattern is left as typed: other letters match in the case they have.
 */
export const likeEachColumn: SessionTextMatch = (pattern, param) =>
  `(${['subject', 'email', 'connection', 'id'].map((c) => `${c} LIKE ${param(pattern)} ESCAPE '\\'`).join(' OR ')})`;

/** PostgreSQL: one lowercase, byte-wise ("C") column the table keeps of the four (migration 6), one LIKE per row. */
export const likeSearchText: SessionTextMatch = (pattern, param) => `search_text LIKE ${param(pattern.toLowerCase())} ESCAPE '\\'`;

/**
 * The WHERE clause and parameters of a session query, with placeholders made by `param` (`?` for SQLite,
 * `$n` for PostgreSQL). Newest first, keyset-paginated on (opened_at_us, id).
 */
export function sessionQuerySql(q: SessionQuery, param: (value: string | number) => string, textMatch: SessionTextMatch): string {
  const where: string[] = [];
  if (q.subject !== undefined) where.push(`subject = ${param(q.subject)}`);
  if (q.issuer !== undefined) where.push(`issuer = ${param(q.issuer)}`);
  if (q.connection !== undefined) where.push(`connection = ${param(q.connection)}`);
  if (q.status !== undefined) where.push(`status = ${param(q.status)}`);
  if (q.fromUs !== undefined) where.push(`opened_at_us >= ${param(q.fromUs)}`);
  if (q.toUs !== undefined) where.push(`opened_at_us < ${param(q.toUs)}`);
  if (q.hadDenial !== undefined) where.push(q.hadDenial ? 'denials > 0' : 'denials = 0');
  if (q.hadRedaction !== undefined) where.push(q.hadRedaction ? 'redactions > 0' : 'redactions = 0');
  if (q.search !== undefined && q.search !== '') {
    // Anywhere in the user, e-mail, connection or session id, case-insensitively; % and _ are literal, and control
    // characters (PostgreSQL's search_text separates the columns with one) are dropped.
    const pattern = `%${q.search.replace(/[\u0000-\u001f]/g, '').replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    where.push(textMatch(pattern, param));
  }
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

type Entry = [column: string, value: string | number | null];

function columnsAndValues(entries: Entry[]): { columns: string[]; values: Array<string | number | null> } {
  return { columns: entries.map(([c]) => c), values: entries.map(([, v]) => v) };
}

/** The columns of an access request, in insert order, with its values. */
export function accessRequestToDb(a: AccessRequestRow): { columns: string[]; values: Array<string | number | null> } {
  return columnsAndValues([
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
  ]);
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

/** A newest-first listing of `table`, keeping rows whose columns equal the filters given (undefined: any). */
function newestFirstSql(table: string, filters: Record<string, string | undefined>, limit: number, placeholder: (v: string | number) => string): string {
  const where = Object.entries(filters).flatMap(([column, v]) => (v === undefined ? [] : [`${column} = ${placeholder(v)}`]));
  return `SELECT * FROM ${table}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at_us DESC, id DESC LIMIT ${placeholder(limit)}`;
}

/** The WHERE clause of an access request query, given a placeholder maker. */
export function accessQuerySql(q: { status?: string; connection?: string; limit: number }, placeholder: (v: string | number) => string): string {
  return newestFirstSql('access_requests', { status: q.status, connection: q.connection }, q.limit, placeholder);
}

export function reviewFromDb(r: DbRow): ReviewRow {
  return {
    id: String(r.id),
    status: String(r.status) as ReviewStatus,
    rule: String(r.rule),
    connection: String(r.connection),
    sessionId: String(r.session_id),
    instanceId: String(r.instance_id),
    method: String(r.method),
    target: strOrNull(r.target),
    params: String(r.params),
    digest: String(r.digest),
    requesterSubject: String(r.requester_subject),
    requesterIssuer: String(r.requester_issuer),
    requesterEmail: strOrNull(r.requester_email),
    approverGroups: (json(r.approver_groups) as string[] | null) ?? [],
    minApprovals: num(r.min_approvals),
    approvals: (json(r.approvals) as ReviewApproval[] | null) ?? [],
    createdAtUs: num(r.created_at_us),
    expiresAtUs: num(r.expires_at_us),
    decidedAtUs: numOrNull(r.decided_at_us),
    deciderSubject: strOrNull(r.decider_subject),
    deciderIssuer: strOrNull(r.decider_issuer),
    deciderEmail: strOrNull(r.decider_email),
    decisionNote: strOrNull(r.decision_note),
  };
}

/** The approvals columns: the list, and its length for the compare-and-set of `reviewUpdateSql`. */
function approvalEntries(approvals: ReviewApproval[]): Entry[] {
  return [
    ['approvals', JSON.stringify(approvals)],
    ['approval_count', approvals.length],
  ];
}

/** The columns of a review, in insert order, with its values. */
export function reviewToDb(r: ReviewRow): { columns: string[]; values: Array<string | number | null> } {
  return columnsAndValues([
    ['id', r.id],
    ['status', r.status],
    ['rule', r.rule],
    ['connection', r.connection],
    ['session_id', r.sessionId],
    ['instance_id', r.instanceId],
    ['method', r.method],
    ['target', r.target],
    ['params', r.params],
    ['digest', r.digest],
    ['requester_subject', r.requesterSubject],
    ['requester_issuer', r.requesterIssuer],
    ['requester_email', r.requesterEmail],
    ['approver_groups', JSON.stringify(r.approverGroups)],
    ['min_approvals', r.minApprovals],
    ...approvalEntries(r.approvals),
    ['created_at_us', r.createdAtUs],
    ['expires_at_us', r.expiresAtUs],
    ['decided_at_us', r.decidedAtUs],
    ['decider_subject', r.deciderSubject],
    ['decider_issuer', r.deciderIssuer],
    ['decider_email', r.deciderEmail],
    ['decision_note', r.decisionNote],
  ]);
}

/** A review query, given a placeholder maker. */
export function reviewQuerySql(q: ReviewQuery, placeholder: (v: string | number) => string): string {
  return newestFirstSql('reviews', { status: q.status, connection: q.connection, instance_id: q.instanceId }, q.limit, placeholder);
}

/**
 * The whole compare-and-set UPDATE of a review, given a placeholder maker: it writes `to` only while the row is
 * still at `from`, so it changes one row or none.
 */
export function reviewUpdateSql(
  id: string,
  from: { status: ReviewStatus; approvalCount: number },
  to: ReviewUpdate,
  placeholder: (v: string | number | null) => string,
): string {
  const optional: Array<[string, string | number | null | undefined]> = [
    ['decided_at_us', to.decidedAtUs],
    ['decider_subject', to.deciderSubject],
    ['decider_issuer', to.deciderIssuer],
    ['decider_email', to.deciderEmail],
    ['decision_note', to.decisionNote],
  ];
  const entries: Entry[] = [
    ['status', to.status],
    ...(to.approvals === undefined ? [] : approvalEntries(to.approvals)),
    ...optional.filter((e): e is Entry => e[1] !== undefined),
  ];
  const set = entries.map(([column, v]) => `${column} = ${placeholder(v)}`).join(', ');
  return `UPDATE reviews SET ${set} WHERE id = ${placeholder(id)} AND status = ${placeholder(from.status)} AND approval_count = ${placeholder(from.approvalCount)}`;
}

export function toolPinFromDb(r: DbRow): ToolPinRow {
  return {
    connection: String(r.connection),
    tool: String(r.tool),
    digest: strOrNull(r.digest),
    definition: strOrNull(r.definition),
    pendingDigest: strOrNull(r.pending_digest),
    pendingDefinition: strOrNull(r.pending_definition),
    pendingSinceUs: numOrNull(r.pending_since_us),
    removedAtUs: numOrNull(r.removed_at_us),
    pinnedAtUs: num(r.pinned_at_us),
    approvedAtUs: numOrNull(r.approved_at_us),
    approvedBy: strOrNull(r.approved_by),
    reasons: reasonsFromDb(r.reasons),
    pendingReasons: reasonsFromDb(r.pending_reasons),
  };
}

/** Reasons are stored as a JSON array, NULL when there are none. */
const reasonsToDb = (reasons: readonly ToolPinReason[]) => (reasons.length === 0 ? null : JSON.stringify(reasons));
const reasonsFromDb = (v: unknown): ToolPinReason[] => (typeof v === 'string' ? (JSON.parse(v) as ToolPinReason[]) : []);

/** The columns of a tool pin, in insert order, with its values. */
export function toolPinToDb(p: ToolPinRow): { columns: string[]; values: Array<string | number | null> } {
  return columnsAndValues([
    ['connection', p.connection],
    ['tool', p.tool],
    ['digest', p.digest],
    ['definition', p.definition],
    ['pending_digest', p.pendingDigest],
    ['pending_definition', p.pendingDefinition],
    ['pending_since_us', p.pendingSinceUs],
    ['removed_at_us', p.removedAtUs],
    ['pinned_at_us', p.pinnedAtUs],
    ['approved_at_us', p.approvedAtUs],
    ['approved_by', p.approvedBy],
    ['reasons', reasonsToDb(p.reasons)],
    ['pending_reasons', reasonsToDb(p.pendingReasons)],
  ]);
}

/** A listing of one connection's pins (undefined: every connection's), by connection then tool, given a placeholder maker. */
export function toolPinQuerySql(connection: string | undefined, placeholder: (v: string | number) => string): string {
  return `SELECT * FROM tool_pins${connection === undefined ? '' : ` WHERE connection = ${placeholder(connection)}`} ORDER BY connection, tool`;
}

/**
 * The whole compare-and-set UPDATE of a tool pin, given a placeholder maker and the backend's null-safe equality
 * (`IS` in SQLite, `IS NOT DISTINCT FROM` in PostgreSQL, so that an expected null matches NULL): it writes the
 * fields present in `to` (null writes NULL) only while both digests are still as expected, so it changes one row
 * or none. With nothing to write it changes nothing, and still tells whether the pin is as expected.
 */
export function toolPinUpdateSql(
  connection: string,
  tool: string,
  expect: { digest: string | null; pendingDigest: string | null },
  to: ToolPinUpdate,
  placeholder: (v: string | number | null) => string,
  nullSafeEquals: 'IS' | 'IS NOT DISTINCT FROM',
): string {
  const fields: Array<[string, string | number | null | undefined]> = [
    ['digest', to.digest],
    ['definition', to.definition],
    ['pending_digest', to.pendingDigest],
    ['pending_definition', to.pendingDefinition],
    ['pending_since_us', to.pendingSinceUs],
    ['removed_at_us', to.removedAtUs],
    ['approved_at_us', to.approvedAtUs],
    ['approved_by', to.approvedBy],
    ['reasons', to.reasons === undefined ? undefined : reasonsToDb(to.reasons)],
    ['pending_reasons', to.pendingReasons === undefined ? undefined : reasonsToDb(to.pendingReasons)],
  ];
  const entries = fields.filter((e): e is Entry => e[1] !== undefined);
  const set = entries.length === 0 ? 'digest = digest' : entries.map(([column, v]) => `${column} = ${placeholder(v)}`).join(', ');
  return (
    `UPDATE tool_pins SET ${set} WHERE connection = ${placeholder(connection)} AND tool = ${placeholder(tool)}` +
    ` AND digest ${nullSafeEquals} ${placeholder(expect.digest)} AND pending_digest ${nullSafeEquals} ${placeholder(expect.pendingDigest)}`
  );
}

export function agentFromDb(r: DbRow): AgentRow {
  return {
    name: String(r.name),
    tokenHash: String(r.token_hash),
    createdAtUs: num(r.created_at_us),
    revokedAtUs: numOrNull(r.revoked_at_us),
    lastSeenAtUs: numOrNull(r.last_seen_at_us),
  };
}

/** The columns of an agent, in insert order, with its values. */
export function agentToDb(a: AgentRow): { columns: string[]; values: Array<string | number | null> } {
  return columnsAndValues([
    ['name', a.name],
    ['token_hash', a.tokenHash],
    ['created_at_us', a.createdAtUs],
    ['revoked_at_us', a.revokedAtUs],
    ['last_seen_at_us', a.lastSeenAtUs],
  ]);
}

/**
 * The whole INSERT of an agent, given a placeholder maker: a name already there is left as it is, or with
 * `replace` takes every other column of `a` (a new token, its creation time, and the revocation and last
 * sighting given, so a revoked agent given a new token is no longer revoked). It changes one row or none.
 */
export function agentPutSql(a: AgentRow, replace: boolean, placeholder: (v: string | number | null) => string): string {
  const { columns, values } = agentToDb(a);
  const conflict = replace
    ? `DO UPDATE SET ${columns
        .filter((c) => c !== 'name')
        .map((c) => `${c} = excluded.${c}`)
        .join(', ')}`
    : 'DO NOTHING';
  return `INSERT INTO agents (${columns.join(', ')}) VALUES (${values.map((v) => placeholder(v)).join(', ')}) ON CONFLICT (name) ${conflict}`;
}

/** Every agent, by name (byte order on both backends). */
export const agentListSql = 'SELECT * FROM agents ORDER BY name';

/**
 * The whole UPDATE of an agent, given a placeholder maker: it writes the fields present in `to` (null writes
 * NULL), so it changes one row or none. With nothing to write it changes nothing, and still tells whether the
 * agent exists.
 */
export function agentUpdateSql(name: string, to: Partial<Pick<AgentRow, 'revokedAtUs' | 'lastSeenAtUs'>>, placeholder: (v: string | number | null) => string): string {
  const fields: Array<[string, string | number | null | undefined]> = [
    ['revoked_at_us', to.revokedAtUs],
    ['last_seen_at_us', to.lastSeenAtUs],
  ];
  const entries = fields.filter((e): e is Entry => e[1] !== undefined);
  const set = entries.length === 0 ? 'token_hash = token_hash' : entries.map(([column, v]) => `${column} = ${placeholder(v)}`).join(', ');
  return `UPDATE agents SET ${set} WHERE name = ${placeholder(name)}`;
}

export function consoleLoginFromDb(r: DbRow): ConsoleLoginRow {
  return {
    state: String(r.state),
    issuer: String(r.issuer),
    codeVerifier: String(r.code_verifier),
    nonce: String(r.nonce),
    returnTo: String(r.return_to),
    redirectUri: String(r.redirect_uri),
    resource: String(r.resource),
    expiresAtUs: num(r.expires_at_us),
  };
}

export function consoleLoginToDb(l: ConsoleLoginRow): { columns: string[]; values: Array<string | number | null> } {
  return columnsAndValues([
    ['state', l.state],
    ['issuer', l.issuer],
    ['code_verifier', l.codeVerifier],
    ['nonce', l.nonce],
    ['return_to', l.returnTo],
    ['redirect_uri', l.redirectUri],
    ['resource', l.resource],
    ['expires_at_us', l.expiresAtUs],
  ]);
}

export function consoleSessionFromDb(r: DbRow): ConsoleSessionRow {
  return {
    idHash: String(r.id_hash),
    subject: String(r.subject),
    issuer: String(r.issuer),
    email: r.email === null ? null : String(r.email),
    name: r.name === null ? null : String(r.name),
    groups: JSON.parse(String(r.groups)) as string[],
    csrfToken: String(r.csrf_token),
    createdAtUs: num(r.created_at_us),
    expiresAtUs: num(r.expires_at_us),
  };
}

export function consoleSessionToDb(s: ConsoleSessionRow): { columns: string[]; values: Array<string | number | null> } {
  return columnsAndValues([
    ['id_hash', s.idHash],
    ['subject', s.subject],
    ['issuer', s.issuer],
    ['email', s.email],
    ['name', s.name],
    ['groups', JSON.stringify(s.groups)],
    ['csrf_token', s.csrfToken],
    ['created_at_us', s.createdAtUs],
    ['expires_at_us', s.expiresAtUs],
  ]);
}
