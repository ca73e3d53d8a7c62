import { type AuditCursorMove, type AuditPendingSession, ledgerCursorKey } from '../store/audit.js';
import { accessRecord, toAuditRecord } from './record.js';
import { maxMoves, type ShipContext } from './ship-context.js';
import type { AuditRecord } from './sink.js';

/** Sessions read per page of a scan. */
const pageSize = 200;

/** Which of the store's backlog is the shipper's. */
export interface BacklogScope {
  /** The sink's watermark: sessions opened before it are not its. */
  fromUs: number;
  /** Live replicas besides this one: their sessions (and ledgers) are theirs to ship. */
  exceptInstances: readonly string[];
  /** When the sink was first started: access events before it are not its. */
  sinceUs: number;
}

/**
 * A shipper's store path: ships what the sessions listed (all pending, or those named) have not, page by page, batch
 * by batch, and on a whole scan the just-in-time access events; `track` is told how far each session went.
 */
export async function shipBacklog(
  ctx: ShipContext,
  scope: BacklogScope,
  sessionIds: readonly string[] | undefined,
  track: (session: AuditPendingSession, cursor: number) => void,
): Promise<void> {
  const base = { fromUs: scope.fromUs, exceptInstances: scope.exceptInstances };
  // Just-in-time access events are in the instances' ledgers, not in sessions: looked at on every whole scan.
  if (sessionIds === undefined && ctx.wanted.has('access')) await shipAccess(ctx, scope);
  const chunks = sessionIds === undefined ? [undefined] : chunk(sessionIds, pageSize);
  for (const ids of chunks) {
    let after: { openedAtUs: number; id: string } | undefined;
    for (;;) {
      const page = await ctx.store.auditPending(ctx.name, {
        ...base,
        ...(ids ? { sessionIds: ids } : {}),
        ...(after ? { after } : {}),
        limit: pageSize,
      });
      await shipPage(ctx, page, track);
      const last = page.at(-1);
      if (page.length < pageSize || last === undefined) break;
      after = { openedAtUs: last.openedAtUs, id: last.sessionId };
    }
  }
}

async function shipPage(ctx: ShipContext, page: readonly AuditPendingSession[], track: (session: AuditPendingSession, cursor: number) => void): Promise<void> {
  let records: AuditRecord[] = [];
  const moves = new Map<string, AuditCursorMove>();
  const flush = async () => {
    if (records.length > 0) await ctx.deliver(records);
    const passed = [...moves.values()];
    await ctx.store.advanceAuditCursors(ctx.name, passed);
    records = [];
    moves.clear();
  };
  const cursors = new Map(page.map((session) => [session.sessionId, session.cursor]));
  const behind = () => page.filter((session) => cursors.get(session.sessionId)! < session.lastSeq);
  // The events of every session behind, read together (one statement, not one per session), batch by batch.
  for (let waiting = behind(); waiting.length > 0; waiting = behind()) {
    ctx.throwIfStopped();
    const of = new Map(waiting.map((session) => [session.sessionId, session]));
    const after = waiting.map((session) => ({ sessionId: session.sessionId, seq: cursors.get(session.sessionId)! }));
    const events = await ctx.store.auditEvents(after, ctx.maxBatch - records.length);
    if (events.length === 0) break;
    for (const event of events) {
      const session = of.get(event.sessionId)!;
      const record = toAuditRecord(session, event, ctx.wanted);
      if (record !== undefined) records.push(record);
      ctx.passed(event.seq - cursors.get(event.sessionId)!);
      cursors.set(event.sessionId, event.seq);
      moves.set(event.sessionId, { sessionId: event.sessionId, seq: event.seq, done: session.sealed && event.seq >= session.lastSeq });
    }
    if (records.length >= ctx.maxBatch || moves.size >= maxMoves) await flush();
  }
  for (const session of page) {
    const cursor = cursors.get(session.sessionId)!;
    if (session.sealed && cursor >= session.lastSeq) moves.set(session.sessionId, { sessionId: session.sessionId, seq: cursor, done: true });
  }
  await flush();
  for (const session of page) track(session, cursors.get(session.sessionId)!);
}

/** The access events of each ledger in this replica's scope, in ledger order, batch by batch. */
async function shipAccess(ctx: ShipContext, scope: BacklogScope): Promise<void> {
  for (const instanceId of await ctx.store.ledgerInstances()) {
    if (scope.exceptInstances.includes(instanceId)) continue;
    for (;;) {
      ctx.throwIfStopped();
      const { rows } = await ctx.store.auditAccessPending(ctx.name, instanceId, scope.sinceUs, ctx.maxBatch);
      const last = rows.at(-1);
      if (last === undefined) break;
      await ctx.deliver(rows.map(accessRecord));
      await ctx.store.advanceAuditCursors(ctx.name, [{ sessionId: ledgerCursorKey(instanceId), seq: last.seq, done: false }]);
      if (rows.length < ctx.maxBatch) break;
    }
  }
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
