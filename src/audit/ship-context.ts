import type { AuditStore } from '../store/audit.js';
import type { RecordingStore } from '../store/recording.js';
import type { AuditEventKind, AuditRecord } from './sink.js';

/** What a shipper reads and writes of the store: its sink's cursors and watermark, the backlog, the ledgers. */
export type ShipperStore = Pick<
  AuditStore,
  'auditSink' | 'auditPending' | 'auditEvents' | 'auditBacklog' | 'auditAccessPending' | 'advanceAuditCursors' | 'advanceAuditWatermark'
> &
  Pick<RecordingStore, 'ledgerInstances'>;

/** Cursor moves written at once at most (sessions whose events were all of kinds not sent move too). */
export const maxMoves = 1_000;

/** The shipper is stopping: what it was doing is left to the store, for the next start. */
export class Stopped extends Error {}

/** What the shipper's two paths (from memory, held-commits.ts; from the store, backlog-scan.ts) share of it. */
export interface ShipContext {
  /** The sink's name: whose cursors are moved. */
  readonly name: string;
  readonly store: ShipperStore;
  /** The audit kinds the sink takes. */
  readonly wanted: ReadonlySet<AuditEventKind>;
  /** The most records sent at once. */
  readonly maxBatch: number;
  /** Throws Stopped once the shipper is stopping. */
  throwIfStopped(): void;
  /** Sends until the sink takes the batch: retried with backoff, never skipped (`onRefused` runs at the first refusal). */
  deliver(records: readonly AuditRecord[], onRefused?: () => Promise<void>): Promise<void>;
  /** `n` recorded events were shipped or passed over: the backlog figure goes down by as many. */
  passed(n: number): void;
}
