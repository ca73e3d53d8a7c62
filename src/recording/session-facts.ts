import type { EventRow, SessionRow } from '../store/types.js';

/**
 * The session row is an index, written beside the recording for listing and search; it is not hashed, so whoever
 * can write the store can change it. Every column it holds is also stated by a hashed event: the opening (who, to
 * what, from where, when, through which gateway), the last `negotiated` event (client, server, protocol) and the
 * close (status, reason, time, counts; the seal signs the rest). These functions compare the row with what those
 * events state, column by column.
 */

/** A row column that disagrees with the recording. */
export interface ColumnMismatch {
  column: keyof SessionRow | 'opening';
  stored: unknown;
  recorded: unknown;
  message: string;
}

/** What the opening event states; `openedAtUs` is absent from sessions recorded before it was part of it. */
export interface OpeningFacts {
  connection: string;
  subject: string;
  issuer: string | null;
  email: string | null;
  groups: string[];
  edge: string;
  remoteAddress: string | null;
  instanceId: string;
  openedAtUs?: number;
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * The opening event's details for a session row: built from the row, so that the two cannot disagree. `name` (the
 * person's display name) and `access` (the grant or approval the session opened under) are the event's alone.
 */
export function openingDetails(row: SessionRow, more: { name?: string | null; access?: unknown; virtual?: unknown } = {}): Record<string, unknown> {
  return {
    connection: row.connection,
    identity: { subject: row.subject, issuer: row.issuer, email: row.email, name: more.name ?? null, groups: row.groups },
    edge: row.edge,
    remoteAddress: row.remoteAddress,
    gateway: row.instanceId,
    openedAtUs: row.openedAtUs,
    ...(more.access !== undefined ? { access: more.access } : {}),
    ...(more.virtual !== undefined ? { virtual: more.virtual } : {}),
  };
}

/** The facts of an opening event, or undefined when `e` is not a readable opening. */
export function openingFacts(e: EventRow | undefined): OpeningFacts | undefined {
  if (e === undefined || e.seq !== 0 || e.kind !== 'open') return undefined;
  const d = parse(e.payload);
  const who = d?.identity as Record<string, unknown> | undefined;
  if (d === undefined || typeof who !== 'object' || who === null || typeof who.subject !== 'string' || typeof d.connection !== 'string') return undefined;
  return {
    connection: d.connection,
    subject: who.subject,
    issuer: str(who.issuer),
    email: str(who.email),
    groups: Array.isArray(who.groups) ? who.groups.map(String) : [],
    edge: str(d.edge) ?? '',
    remoteAddress: str(d.remoteAddress),
    instanceId: str(d.gateway) ?? '',
    ...(typeof d.openedAtUs === 'number' ? { openedAtUs: d.openedAtUs } : {}),
  };
}

/** JSON equality for column values (groups, client info): key order as recorded, which the row keeps. */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function mismatch(column: ColumnMismatch['column'], stored: unknown, recorded: unknown, what: string): ColumnMismatch {
  return {
    column,
    stored,
    recorded,
    message: `the session row's ${column} is ${JSON.stringify(stored ?? null)}, but the recording's ${what} says ${JSON.stringify(recorded ?? null)}: the row was changed`,
  };
}

/** The opening's columns: who, to what, from where, when, recorded by which gateway. */
export function openingMismatches(row: SessionRow, opening: OpeningFacts | undefined): ColumnMismatch[] {
  if (opening === undefined) {
    return [
      {
        column: 'opening',
        stored: row.subject,
        recorded: null,
        message: 'the session has no readable opening event: its owner cannot be told from the recording',
      },
    ];
  }
  const out: ColumnMismatch[] = [];
  const check = (column: keyof OpeningFacts & keyof SessionRow, recorded: unknown) => {
    if (!same(row[column], recorded)) out.push(mismatch(column, row[column], recorded, 'opening event'));
  };
  check('subject', opening.subject);
  // Rows written before store version 6 have no issuer (their opening events do): null there is no claim.
  if (row.issuer !== null) check('issuer', opening.issuer);
  check('email', opening.email);
  check('groups', opening.groups);
  check('connection', opening.connection);
  check('edge', opening.edge);
  check('remoteAddress', opening.remoteAddress);
  check('instanceId', opening.instanceId);
  if (opening.openedAtUs !== undefined) check('openedAtUs', opening.openedAtUs);
  return out;
}

/** The negotiated columns against the last `negotiated` event (null before one is recorded). */
export function negotiatedMismatches(row: SessionRow, negotiated: EventRow | undefined): ColumnMismatch[] {
  const d = negotiated === undefined ? undefined : parse(negotiated.payload);
  const recorded = { clientInfo: d?.clientInfo ?? null, serverInfo: d?.serverInfo ?? null, protocolVersion: d?.protocolVersion ?? null };
  const out: ColumnMismatch[] = [];
  for (const column of ['clientInfo', 'serverInfo', 'protocolVersion'] as const) {
    // A live session's row learns these in the batch that records the event: a reader between the two sees null.
    if (row.status === 'open' && row[column] === null) continue;
    if (!same(row[column], recorded[column]))
      out.push(mismatch(column, row[column], recorded[column], negotiated ? `negotiated event ${negotiated.seq}` : 'lack of a negotiated event'));
  }
  return out;
}

/**
 * The closing columns against the close event (the seal's signature covers status, time, event count and last
 * hash, checked elsewhere). `counted` says whether the close event states the counts (sessions recorded since it does).
 */
export function closingMismatches(row: SessionRow, close: EventRow | undefined): { mismatches: ColumnMismatch[]; counted: boolean } {
  if (row.status === 'open') {
    // Nothing of the end is known yet: a row that claims any of it was changed.
    const out: ColumnMismatch[] = [];
    if (row.closeReason !== null) out.push(mismatch('closeReason', row.closeReason, null, 'open session'));
    if (row.denials !== 0) out.push(mismatch('denials', row.denials, 0, 'open session (counted at the close)'));
    if (row.redactions !== 0) out.push(mismatch('redactions', row.redactions, 0, 'open session (counted at the close)'));
    return { mismatches: out, counted: true };
  }
  if (close === undefined || close.kind !== 'close') return { mismatches: [], counted: false };
  const d = parse(close.payload) ?? {};
  const what = `close event ${close.seq}`;
  const out: ColumnMismatch[] = [];
  if (!same(row.closeReason, d.reason ?? null)) out.push(mismatch('closeReason', row.closeReason, d.reason, what));
  if (!same(row.status, d.status ?? null)) out.push(mismatch('status', row.status, d.status, what));
  if (row.closedAtUs !== close.timeUs) out.push(mismatch('closedAtUs', row.closedAtUs, close.timeUs, what));
  const counted = typeof d.denials === 'number' && typeof d.redactions === 'number';
  if (counted) {
    if (row.denials !== d.denials) out.push(mismatch('denials', row.denials, d.denials, what));
    if (row.redactions !== d.redactions) out.push(mismatch('redactions', row.redactions, d.redactions, what));
  }
  return { mismatches: out, counted };
}
