import type { Logger } from 'pino';
import type { CommittedBatch, CommittedRange } from '../recording/committed-listeners.js';
import { nowUs } from '../recording/time.js';
import { type AuditCursorMove, type AuditPendingSession, type AuditStore, ledgerCursorKey } from '../store/audit.js';
import type { RecordingStore } from '../store/recording.js';
import type { EventRow } from '../store/types.js';
import { FailureReport } from './failure-report.js';
import { accessRecord, type RecordSession, toAuditRecord } from './record.js';
import type { AuditEventKind, AuditRecord, AuditSink } from './sink.js';

/*
 * One sink's shipper: sends recorded events in order per session, in batches, and moves the sink's durable cursor
 * (store/audit.ts) only once the sink has taken a batch. It is told of every commit after it is durable, with the
 * batch's events: a session whose cursor it knows (opened here since it started, or read from the store once) is
 * shipped from those, without reading them back; the store is read for the rest, the backlog (after a restart, a
 * sink outage, a batch it was not told of, other replicas' sessions). The store is the buffer: however far behind a
 * sink falls, the shipper holds a bounded amount in memory (past it, it forgets and reads the store), and the data
 * path never waits for it (a round at most every gatherMs).
 *
 * What is guaranteed (for docs/operations.md, "Audit streams"):
 * - Every event recorded in a session the sink is responsible for reaches it: a batch the sink refuses (an error, a
 *   non-2xx answer, a timeout) is retried with backoff, forever, and nothing after it is sent meanwhile. Failures
 *   show in /metrics, the console and the log; the records wait in the store.
 * - At least once: a record is sent again when the gateway stopped (or crashed) after the sink took a batch and
 *   before its cursor moved, or when two replicas both ship a gone replica's session. A duplicate has the same
 *   instance, session and seq (and hash).
 * - In order per session (seq order), across batches and restarts; no order between sessions. With duplicates, the
 *   first arrival of each record is in order (a shipper sends a session's events upward from the cursor it read, and
 *   a cursor only moves past what a sink has taken), and a duplicate repeats what arrived before.
 * - Which sessions: those opened since the sink (by name) was first started on this store. Each replica ships the
 *   sessions it recorded, and those of instances that are not live replicas now (replicas gone or left, and earlier
 *   instance ids); so every replica must have the same sinks. A sink is told of a commit at once; sessions written
 *   without a commit here (a gone replica's, sealed by a survivor) are found by the scan every audit.pollInterval, as
 *   are just-in-time access events (in each instance's ledger, in ledger order).
 * - On shutdown, the sessions' closes are shipped before the gateway exits (a few seconds at most, not retried);
 *   what is left is shipped at the next start, or by another replica once this one has left.
 * - Retention (recording.retention) keeps a session until every configured sink has shipped it whole: a sink down
 *   for long delays deletion (the store grows), it never loses to it.
 * - Not covered: events best-effort recording lost (the recording shows the gap, and so does the stream's seq).
 */

export interface ShipperOptions {
  store: Pick<
    AuditStore,
    'auditSink' | 'auditPending' | 'auditEvents' | 'auditBacklog' | 'auditAccessPending' | 'advanceAuditCursors' | 'advanceAuditWatermark'
  > &
    Pick<RecordingStore, 'ledgerInstances'>;
  sink: AuditSink;
  /** The sink kind's key (http, file, syslog), for the status. */
  kind: string;
  /** The audit kinds this sink takes. */
  events: readonly AuditEventKind[];
  /** The replicas alive now besides this one: their sessions are theirs to ship. */
  othersAlive: () => readonly string[];
  log: Logger;
  /** How often the whole backlog is scanned (the safety net besides being told of commits). */
  pollMs: number;
  /** The first retry's delay after a failed send (doubling up to maxRetryMs); default 1 s. */
  retryMs?: number;
  maxRetryMs?: number;
  /** How far behind now the watermark stays (a session row committed late, replicas' clocks); default 10 min. */
  watermarkLagMs?: number;
  /**
   * Woken by a commit, how long it lets more gather before it reads them (default 200 ms): fewer, fuller batches, so
   * the stream costs the data path little however busy it is; a record reaches the sink that much later.
   */
  gatherMs?: number;
  /** How long `stop` waits for a send in flight before it gives up on it (sent again at the next start); default 5 s. */
  stopTimeoutMs?: number;
  /** Committed events held in memory for the next round at most (past it, they are read from the store); default 50,000. */
  maxHeldEvents?: number;
}

/** A sink as /metrics and the console show it. */
export interface AuditSinkStatus {
  name: string;
  kind: string;
  /** Recorded events not yet past the sink's cursor (an estimate between scans; it counts events of kinds not sent). */
  backlog: number;
  /** When a batch was last taken by the sink (ms since the epoch), or undefined. */
  lastShippedAtMs: number | undefined;
  /** Failed sends since start (store reads that failed too). */
  failures: number;
  /** When the current run of failures began (ms), undefined while it works. */
  failingSinceMs: number | undefined;
  lastError: string | undefined;
}

/** Sessions a commit named, kept until the shipper looks at them; past this many it scans everything instead. */
const maxHints = 5_000;
/** Sessions read per page of a scan. */
const pageSize = 200;
/** Cursor moves written at once at most (sessions whose events were all of kinds not sent move too). */
const maxMoves = 1_000;
/** Sessions whose cursor the shipper keeps in mind at most: past it, the others' events are read from the store. */
const maxTracked = 20_000;
/** Committed events' payloads held for the next round at most (besides ShipperOptions.maxHeldEvents). */
const maxFreshChars = 32 * 1024 * 1024;

/** A session whose events can be shipped from the commits told of: its facts, and the cursor the store has for it. */
interface Tracked {
  facts: RecordSession;
  /** The last event the sink took or passed over (written to the store at the end of the round that shipped it). */
  cursor: number;
}

class Stopped extends Error {}

export class AuditShipper {
  readonly #o: ShipperOptions;
  readonly #wanted: ReadonlySet<AuditEventKind>;
  readonly #maxBatch: number;
  readonly #sendReport: FailureReport;
  readonly #storeReport: FailureReport;
  #hints = new Set<string>();
  #tracked = new Map<string, Tracked>();
  /** Events of durable batches not looked at yet, in commit order. */
  #fresh: EventRow[] = [];
  #freshChars = 0;
  #fullScanDue = true;
  #stopped = false;
  /** Shutting down: one last scan ships what the recorder wrote last, without retrying a failing sink. */
  #finishing = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #watermarkUs = 0;
  #sinceUs = 0;
  #backlog = 0;
  #failures = 0;
  #lastShippedAtMs: number | undefined;
  /** Reads the backlog figure afresh every pollMs, apart from the loop (which may be stuck retrying a send). */
  #gauge: NodeJS.Timeout | undefined;

  constructor(o: ShipperOptions) {
    this.#o = o;
    this.#wanted = new Set(o.events);
    this.#maxBatch = Math.max(1, o.sink.maxBatch ?? 500);
    const fields = { sink: o.sink.name, kind: o.kind };
    this.#sendReport = new FailureReport(o.log, `audit sink ${o.sink.name}`, fields);
    this.#storeReport = new FailureReport(o.log, `reading the audit backlog of sink ${o.sink.name} from the store`, fields);
  }

  get name(): string {
    return this.#o.sink.name;
  }

  start(): void {
    this.#gauge ??= setInterval(() => void this.#countBacklog().catch(() => {}), this.#o.pollMs);
    this.#gauge.unref();
    this.#loop ??= this.#run().catch((err: Error) => {
      if (!(err instanceof Stopped)) this.#o.log.error({ sink: this.name, err: err.message }, 'the audit shipper stopped on an unexpected error');
    });
  }

  /**
   * A batch is durable (the recorder's onCommitted): these sessions have events to ship, and `batch` has them (without
   * it, or before the sink's row is read, they are read from the store). Never blocks, never throws.
   */
  committed(sessions: ReadonlyMap<string, CommittedRange>, batch?: CommittedBatch): void {
    for (const range of sessions.values()) this.#backlog += range.last - range.first + 1;
    if (batch === undefined || this.#watermarkUs === 0) this.#hint(sessions.keys());
    else this.#hold(batch);
    this.#wake?.();
  }

  /** Sessions to read from the store next round (past maxHints, everything is). */
  #hint(sessionIds: Iterable<string>): void {
    if (this.#fullScanDue) return;
    for (const id of sessionIds) this.#hints.add(id);
    if (this.#hints.size > maxHints) {
      this.#hints.clear();
      this.#fullScanDue = true;
    }
  }

  /** Keeps a durable batch's events for the next round, and the cursors (none yet) of the sessions it opened. */
  #hold(batch: CommittedBatch): void {
    let chars = 0;
    for (const event of batch.events) chars += event.payload.length;
    if (this.#stopped) return;
    if (this.#fresh.length + batch.events.length > (this.#o.maxHeldEvents ?? 50_000) || this.#freshChars + chars > maxFreshChars) {
      // Far behind (a sink down, a burst): the store holds all of it; a whole scan goes on from the durable cursors.
      this.#forget();
      this.#hints.clear();
      this.#fullScanDue = true;
      return;
    }
    for (const row of batch.opened) {
      // A session opened before the watermark is not this sink's (it was first started later).
      if (row.openedAtUs < this.#watermarkUs || this.#tracked.size >= maxTracked) continue;
      const { id: sessionId, instanceId, connection, subject, email, edge } = row;
      this.#tracked.set(sessionId, { facts: { sessionId, instanceId, connection, subject, email, edge }, cursor: -1 });
    }
    for (const event of batch.events) this.#fresh.push(event);
    this.#freshChars += chars;
  }

  /** Drops what it held in memory: the store is read for everything from the durable cursors on. */
  #forget(): void {
    this.#tracked.clear();
    this.#fresh = [];
    this.#freshChars = 0;
  }

  /** Scan everything soon (a replica left: its sessions are now this one's to ship). */
  rescan(): void {
    this.#fullScanDue = true;
    this.#hints.clear();
    this.#wake?.();
  }

  status(): AuditSinkStatus {
    const failing = this.#sendReport.failingSince ?? this.#storeReport.failingSince;
    return {
      name: this.name,
      kind: this.#o.kind,
      backlog: Math.max(0, this.#backlog),
      lastShippedAtMs: this.#lastShippedAtMs,
      failures: this.#failures,
      failingSinceMs: failing,
      lastError: this.#sendReport.lastError ?? this.#storeReport.lastError,
    };
  }

  /**
   * On shutdown, once the recorder has written its last batch (the sessions' closes): one last scan ships it, unless
   * the sink fails or `withinMs` passes first (then it waits in the store for the next start, or another replica).
   */
  async finish(withinMs: number): Promise<void> {
    this.#finishing = true;
    this.#fullScanDue = true;
    this.#wake?.();
    if (this.#loop !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#loop, new Promise<void>((resolve) => (timer = setTimeout(resolve, withinMs)))]);
      clearTimeout(timer);
    }
    await this.stop();
  }

  /** Stops after the send in flight (waiting stopTimeoutMs at most: what is not acknowledged is sent again next time). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#gauge);
    this.#wake?.();
    if (this.#loop !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#loop, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#o.stopTimeoutMs ?? 5000)))]);
      clearTimeout(timer);
    }
    await this.#o.sink.close().catch((err: Error) => this.#o.log.warn({ sink: this.name, err: err.message }, 'closing an audit sink failed'));
  }

  async #run(): Promise<void> {
    const sinkRow = await this.#storeRetrying(() => this.#o.store.auditSink(this.name, nowUs()));
    this.#watermarkUs = sinkRow.watermarkUs;
    this.#sinceUs = sinkRow.sinceUs;
    let lastScanMs = Number.NEGATIVE_INFINITY;
    while (!this.#stopped) {
      const last = this.#finishing;
      try {
        // What commits told of first (its cursors written before any store read, which would otherwise send it again).
        const shipped = await this.#shipFresh();
        const full = this.#fullScanDue || Date.now() - lastScanMs >= this.#o.pollMs;
        const hints = full ? undefined : [...this.#hints];
        this.#hints.clear();
        this.#fullScanDue = false;
        if (full || hints!.length > 0) {
          await this.#scan(hints);
          if (full) {
            lastScanMs = Date.now();
            await this.#afterFullScan();
          }
        }
        if (shipped || full || hints!.length > 0) this.#storeReport.succeeded();
        if (full && last) return;
      } catch (err) {
        if (err instanceof Stopped || this.#stopped || this.#finishing) return;
        // A store read or cursor write failed: the cursors in mind may be ahead of the store's; look at everything
        // again, from the store, once it answers.
        this.#failures++;
        this.#storeReport.failed(err as Error);
        this.#forget();
        this.#fullScanDue = true;
        await this.#pause(this.#o.retryMs ?? 1000);
        continue;
      }
      if (!this.#fullScanDue && this.#hints.size === 0 && this.#fresh.length === 0) {
        await this.#pause(Math.max(0, lastScanMs + this.#o.pollMs - Date.now()), true);
      }
      // A round at most every gatherMs however busy the gateway is: its fixed costs (reads, a request) are shared.
      if (!this.#stopped && !this.#finishing) await this.#pause(this.#o.gatherMs ?? 200);
    }
  }

  /**
   * Ships the events commits told of, from memory, for the sessions whose cursor it knows; the others (not tracked,
   * or with a gap: a batch it was not told of) are read from the store. The cursors are written once, at the end
   * (or before retrying a send the sink refused, so that a restart meanwhile sends little again). Whether it shipped.
   */
  async #shipFresh(): Promise<boolean> {
    if (this.#fresh.length === 0) return false;
    const fresh = this.#fresh;
    this.#fresh = [];
    this.#freshChars = 0;
    const untracked = new Set<string>();
    /** The moves of what the sink has taken, and of the batch being filled. */
    const taken = new Map<string, AuditCursorMove>();
    let filling = new Map<string, AuditCursorMove>();
    let records: AuditRecord[] = [];
    const writeTaken = async () => {
      const moves = [...taken.values()];
      for (let i = 0; i < moves.length; i += maxMoves) await this.#o.store.advanceAuditCursors(this.name, moves.slice(i, i + maxMoves));
      taken.clear();
    };
    const send = async () => {
      if (records.length > 0) await this.#deliver(records, () => writeTaken().catch(() => {}));
      for (const [id, move] of filling) taken.set(id, move);
      filling = new Map();
      records = [];
    };
    for (const event of fresh) {
      if (this.#stopped) throw new Stopped();
      const t = this.#tracked.get(event.sessionId);
      if (t === undefined) {
        untracked.add(event.sessionId);
        continue;
      }
      // Shipped already from the store (a scan read it after it was committed).
      if (event.seq <= t.cursor) continue;
      if (event.seq !== t.cursor + 1) {
        this.#tracked.delete(event.sessionId);
        untracked.add(event.sessionId);
        continue;
      }
      const record = toAuditRecord(t.facts, event, this.#wanted);
      if (record !== undefined) records.push(record);
      t.cursor = event.seq;
      this.#backlog--;
      // A session's close is its last event (written with its seal).
      const done = event.kind === 'close';
      filling.set(event.sessionId, { sessionId: event.sessionId, seq: event.seq, done });
      if (done) this.#tracked.delete(event.sessionId);
      if (records.length >= this.#maxBatch) await send();
    }
    await send();
    await writeTaken();
    this.#hint(untracked);
    return true;
  }

  /** After the store path has shipped a session up to `cursor`: its next events go out from memory. */
  #track(session: AuditPendingSession, cursor: number): void {
    if (session.sealed) {
      this.#tracked.delete(session.sessionId);
      return;
    }
    const t = this.#tracked.get(session.sessionId);
    if (t !== undefined) t.cursor = Math.max(t.cursor, cursor);
    else if (this.#tracked.size < maxTracked) this.#tracked.set(session.sessionId, { facts: session, cursor });
  }

  /** Ships what the sessions listed (all pending, or those named) have not: page by page, batch by batch. */
  async #scan(sessionIds: readonly string[] | undefined): Promise<void> {
    const base = { fromUs: this.#watermarkUs, exceptInstances: this.#o.othersAlive() };
    // Just-in-time access events are in the instances' ledgers, not in sessions: looked at on every whole scan.
    if (sessionIds === undefined && this.#wanted.has('access')) await this.#shipAccess(base.exceptInstances);
    const chunks = sessionIds === undefined ? [undefined] : chunk(sessionIds, pageSize);
    for (const ids of chunks) {
      let after: { openedAtUs: number; id: string } | undefined;
      for (;;) {
        const page = await this.#o.store.auditPending(this.name, {
          ...base,
          ...(ids ? { sessionIds: ids } : {}),
          ...(after ? { after } : {}),
          limit: pageSize,
        });
        await this.#ship(page);
        const last = page.at(-1);
        if (page.length < pageSize || last === undefined) break;
        after = { openedAtUs: last.openedAtUs, id: last.sessionId };
      }
    }
  }

  async #ship(page: readonly AuditPendingSession[]): Promise<void> {
    let records: AuditRecord[] = [];
    const moves = new Map<string, AuditCursorMove>();
    const flush = async () => {
      if (records.length > 0) await this.#deliver(records);
      const passed = [...moves.values()];
      await this.#o.store.advanceAuditCursors(this.name, passed);
      records = [];
      moves.clear();
    };
    const cursors = new Map(page.map((session) => [session.sessionId, session.cursor]));
    const behind = () => page.filter((session) => cursors.get(session.sessionId)! < session.lastSeq);
    // The events of every session behind, read together (one statement, not one per session), batch by batch.
    for (let waiting = behind(); waiting.length > 0; waiting = behind()) {
      if (this.#stopped) throw new Stopped();
      const of = new Map(waiting.map((session) => [session.sessionId, session]));
      const after = waiting.map((session) => ({ sessionId: session.sessionId, seq: cursors.get(session.sessionId)! }));
      const events = await this.#o.store.auditEvents(after, this.#maxBatch - records.length);
      if (events.length === 0) break;
      for (const event of events) {
        const session = of.get(event.sessionId)!;
        const record = toAuditRecord(session, event, this.#wanted);
        if (record !== undefined) records.push(record);
        this.#backlog -= event.seq - cursors.get(event.sessionId)!;
        cursors.set(event.sessionId, event.seq);
        moves.set(event.sessionId, { sessionId: event.sessionId, seq: event.seq, done: session.sealed && event.seq >= session.lastSeq });
      }
      if (records.length >= this.#maxBatch || moves.size >= maxMoves) await flush();
    }
    for (const session of page) {
      const cursor = cursors.get(session.sessionId)!;
      if (session.sealed && cursor >= session.lastSeq) moves.set(session.sessionId, { sessionId: session.sessionId, seq: cursor, done: true });
    }
    await flush();
    for (const session of page) this.#track(session, cursors.get(session.sessionId)!);
  }

  /** The access events of each ledger in this replica's scope, in ledger order, batch by batch. */
  async #shipAccess(exceptInstances: readonly string[]): Promise<void> {
    for (const instanceId of await this.#o.store.ledgerInstances()) {
      if (exceptInstances.includes(instanceId)) continue;
      for (;;) {
        if (this.#stopped) throw new Stopped();
        const { rows } = await this.#o.store.auditAccessPending(this.name, instanceId, this.#sinceUs, this.#maxBatch);
        const last = rows.at(-1);
        if (last === undefined) break;
        await this.#deliver(rows.map(accessRecord));
        await this.#o.store.advanceAuditCursors(this.name, [{ sessionId: ledgerCursorKey(instanceId), seq: last.seq, done: false }]);
        if (rows.length < this.#maxBatch) break;
      }
    }
  }

  /** Sends until the sink takes the batch: retried with backoff, never skipped (`onRefused` runs at the first refusal). */
  async #deliver(records: readonly AuditRecord[], onRefused?: () => Promise<void>): Promise<void> {
    let delay = this.#o.retryMs ?? 1000;
    for (let attempt = 0; ; attempt++) {
      if (this.#stopped) throw new Stopped();
      try {
        await this.#o.sink.send(records);
        this.#lastShippedAtMs = Date.now();
        this.#sendReport.succeeded();
        return;
      } catch (err) {
        this.#failures++;
        this.#sendReport.failed(err as Error);
        if (this.#finishing) throw new Stopped();
        if (attempt === 0) await onRefused?.();
        await this.#pause(delay);
        delay = Math.min(delay * 2, this.#o.maxRetryMs ?? 60_000);
      }
    }
  }

  /** After a whole scan: the watermark moves on, and the backlog figure is read afresh. */
  async #afterFullScan(): Promise<void> {
    const capUs = nowUs() - (this.#o.watermarkLagMs ?? 600_000) * 1000;
    if (capUs > this.#watermarkUs) this.#watermarkUs = await this.#o.store.advanceAuditWatermark(this.name, capUs);
    await this.#countBacklog();
  }

  async #countBacklog(): Promise<void> {
    if (this.#watermarkUs === 0) return;
    this.#backlog = await this.#o.store.auditBacklog(this.name, { fromUs: this.#watermarkUs, exceptInstances: this.#o.othersAlive() });
  }

  async #storeRetrying<T>(fn: () => Promise<T>): Promise<T> {
    let delay = this.#o.retryMs ?? 1000;
    for (;;) {
      if (this.#stopped) throw new Stopped();
      try {
        const out = await fn();
        this.#storeReport.succeeded();
        return out;
      } catch (err) {
        this.#failures++;
        this.#storeReport.failed(err as Error);
        await this.#pause(delay);
        delay = Math.min(delay * 2, this.#o.maxRetryMs ?? 60_000);
      }
    }
  }

  /** Waits `ms`, or less when stopped (or, when `wakeable`, when told of a commit or asked to rescan). */
  #pause(ms: number, wakeable = false): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      // The gateway's port keeps the process alive; a shipper's wait alone never should.
      timer.unref();
      this.#wake = () => {
        if (wakeable || this.#stopped || this.#finishing) done();
      };
    });
  }
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
