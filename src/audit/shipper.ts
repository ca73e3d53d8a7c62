import type { Logger } from 'pino';
import type { CommittedBatch, CommittedRange } from '../recording/committed-listeners.js';
import { nowUs } from '../recording/time.js';
import { shipBacklog } from './backlog-scan.js';
import { FailureReport } from './failure-report.js';
import { HeldCommits } from './held-commits.js';
import { type ShipContext, type ShipperStore, Stopped } from './ship-context.js';
import { type Backoff, Pauses, retrying } from './shipper-retry.js';
import type { AuditEventKind, AuditRecord, AuditSink } from './sink.js';

/*
 * One sink's shipper: sends recorded events in order per session, in batches, and moves the sink's durable cursor
 * (store/audit.ts) only once the sink has taken a batch. It is told of every commit after it is durable, with the
 * batch's events: a session whose cursor it knows (opened here since it started, or read from the store once) is
 * shipped from those, without reading them back; the store is read for the rest, the backlog (after a restart, a
 * sink outage, a batch it was not told of, other replicas' sessions). The store is the buffer: however far behind a
 * sink falls, the shipper holds a bounded amount in memory (past it, it forgets and reads the store), and the data
 * path never waits for it (a round at most every gatherMs). The live path is held-commits.ts, the store path
 * backlog-scan.ts, the retries shipper-retry.ts.
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
  store: ShipperStore;
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

export class AuditShipper {
  readonly #o: ShipperOptions;
  readonly #wanted: ReadonlySet<AuditEventKind>;
  readonly #maxBatch: number;
  readonly #backoff: Backoff;
  readonly #sendReport: FailureReport;
  readonly #storeReport: FailureReport;
  readonly #context: ShipContext;
  readonly #held = new HeldCommits();
  readonly #pauses = new Pauses({ stopped: () => this.#stopped, finishing: () => this.#finishing });
  #hints = new Set<string>();
  #fullScanDue = true;
  #stopped = false;
  /** Shutting down: one last scan ships what the recorder wrote last, without retrying a failing sink. */
  #finishing = false;
  #loop: Promise<void> | undefined;
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
    this.#backoff = { firstMs: o.retryMs ?? 1000, maxMs: o.maxRetryMs ?? 60_000 };
    const fields = { sink: o.sink.name, kind: o.kind };
    this.#sendReport = new FailureReport(o.log, `audit sink ${o.sink.name}`, fields);
    this.#storeReport = new FailureReport(o.log, `reading the audit backlog of sink ${o.sink.name} from the store`, fields);
    this.#context = {
      name: o.sink.name,
      store: o.store,
      wanted: this.#wanted,
      maxBatch: this.#maxBatch,
      throwIfStopped: () => {
        if (this.#stopped) throw new Stopped();
      },
      deliver: (records, onRefused) => this.#deliver(records, onRefused),
      passed: (n) => {
        this.#backlog -= n;
      },
    };
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
    this.#pauses.wake();
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

  /** Keeps a durable batch's events for the next round (held-commits.ts), unless that would hold too much. */
  #hold(batch: CommittedBatch): void {
    if (this.#stopped) return;
    if (!this.#held.hold(batch, this.#watermarkUs, this.#o.maxHeldEvents ?? 50_000)) {
      // Far behind (a sink down, a burst): the store holds all of it; a whole scan goes on from the durable cursors.
      this.#held.forget();
      this.#hints.clear();
      this.#fullScanDue = true;
    }
  }

  /** Scan everything soon (a replica left: its sessions are now this one's to ship). */
  rescan(): void {
    this.#fullScanDue = true;
    this.#hints.clear();
    this.#pauses.wake();
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
    this.#pauses.wake();
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
    this.#pauses.wake();
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
        // What commits told of first (its cursors written before any store read, which would otherwise send it again);
        // the sessions it could not ship from memory are read from the store.
        const untracked = await this.#held.ship(this.#context);
        if (untracked !== undefined) this.#hint(untracked);
        const shipped = untracked !== undefined;
        const full = this.#fullScanDue || Date.now() - lastScanMs >= this.#o.pollMs;
        const hints = full ? undefined : [...this.#hints];
        this.#hints.clear();
        this.#fullScanDue = false;
        if (full || hints!.length > 0) {
          const scope = { fromUs: this.#watermarkUs, exceptInstances: this.#o.othersAlive(), sinceUs: this.#sinceUs };
          await shipBacklog(this.#context, scope, hints, (session, cursor) => this.#held.track(session, cursor));
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
        this.#held.forget();
        this.#fullScanDue = true;
        await this.#pauses.pause(this.#backoff.firstMs);
        continue;
      }
      if (!this.#fullScanDue && this.#hints.size === 0 && this.#held.empty) {
        await this.#pauses.pause(Math.max(0, lastScanMs + this.#o.pollMs - Date.now()), true);
      }
      // A round at most every gatherMs however busy the gateway is: its fixed costs (reads, a request) are shared.
      if (!this.#stopped && !this.#finishing) await this.#pauses.pause(this.#o.gatherMs ?? 200);
    }
  }

  /** Sends until the sink takes the batch: retried with backoff, never skipped (`onRefused` runs at the first refusal). */
  #deliver(records: readonly AuditRecord[], onRefused?: () => Promise<void>): Promise<void> {
    return retrying(
      this.#backoff,
      this.#pauses,
      () => this.#stopped,
      async () => {
        await this.#o.sink.send(records);
        this.#lastShippedAtMs = Date.now();
        this.#sendReport.succeeded();
      },
      async (err, attempt) => {
        this.#failures++;
        this.#sendReport.failed(err);
        if (this.#finishing) throw new Stopped();
        if (attempt === 0) await onRefused?.();
      },
    );
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

  #storeRetrying<T>(fn: () => Promise<T>): Promise<T> {
    return retrying(
      this.#backoff,
      this.#pauses,
      () => this.#stopped,
      async () => {
        const out = await fn();
        this.#storeReport.succeeded();
        return out;
      },
      (err) => {
        this.#failures++;
        this.#storeReport.failed(err);
      },
    );
  }
}
