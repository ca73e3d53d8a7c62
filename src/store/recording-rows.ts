import { json, jsonOrNull, num, numOrNull, type Row, strOrNull } from './rows.js';
import type { EventRow, KeyRow, LedgerRow, SessionRow } from './types.js';

/** The recording's rows: sessions, events, the ledger and signing keys, as stored. */

export function sessionFromDb(r: Row): SessionRow {
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

/** The columns of a new session row, in the order of `sessionToDb`'s values. */
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

export function sessionToDb(s: SessionRow): Array<string | number | null> {
  return [
    s.id,
    s.instanceId,
    s.connection,
    s.subject,
    s.email,
    JSON.stringify(s.groups),
    s.edge,
    s.remoteAddress,
    jsonOrNull(s.clientInfo),
    jsonOrNull(s.serverInfo),
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

export function eventFromDb(r: Row): EventRow {
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

export function ledgerFromDb(r: Row): LedgerRow {
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

export function keyFromDb(r: Row): KeyRow {
  return { keyId: String(r.key_id), publicKey: String(r.public_key), instanceId: String(r.instance_id), createdAtUs: num(r.created_at_us) };
}
