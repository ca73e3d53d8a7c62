import type { AuditSinkStatus } from '../audit/shipper.js';

/** An audit sink as the console's admins see it (the admin page's "Audit streams", and its warning). */
export interface AuditStreamSummary {
  name: string;
  kind: string;
  backlog: number;
  lastShippedAt: string | null;
  failures: number;
  /** Why the console warns about it (failing, or behind with nothing taken lately), or null when it keeps up. */
  warning: string | null;
}

/** A sink with events waiting and nothing taken for this long is behind, even when no send has failed (a slow sink). */
const behindAfterMs = 5 * 60_000;

export function auditStreamSummaries(statuses: readonly AuditSinkStatus[], nowMs = Date.now()): AuditStreamSummary[] {
  return statuses.map((s) => ({
    name: s.name,
    kind: s.kind,
    backlog: s.backlog,
    lastShippedAt: s.lastShippedAtMs === undefined ? null : new Date(s.lastShippedAtMs).toISOString(),
    failures: s.failures,
    warning: warningOf(s, nowMs),
  }));
}

function warningOf(s: AuditSinkStatus, nowMs: number): string | null {
  const waiting = `${s.backlog} event${s.backlog === 1 ? '' : 's'} wait in the store`;
  if (s.failingSinceMs !== undefined)
    return `audit sink ${s.name} (${s.kind}) has been failing since ${new Date(s.failingSinceMs).toISOString()}: ${s.lastError ?? 'unknown error'}; ${waiting}, retried until it takes them`;
  if (s.backlog > 0 && (s.lastShippedAtMs === undefined || nowMs - s.lastShippedAtMs > behindAfterMs))
    return `audit sink ${s.name} (${s.kind}) is behind: ${waiting} and it has taken nothing for ${s.lastShippedAtMs === undefined ? 'as long as the gateway has run' : `${Math.round((nowMs - s.lastShippedAtMs) / 60_000)} minutes`}`;
  return null;
}
