import { ErrorCode, isRequest, isResponse, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';
import { answeredAsLegacy, type ModernConnection } from './modern-connection.js';
import { ModernUpstream } from './modern-upstream.js';
import { type Upstream, UpstreamError } from './upstream.js';

/** What the gateway learned of a connection's server: a 2026-07-28 one (and how to reach it), or a legacy one. */
export type EraVerdict = { modern: ModernConnection } | LegacyVerdict;

/** A legacy server; `spare`: the started link the probe used, for the first session to take (once). */
export interface LegacyVerdict {
  legacy: string;
  spare?: (Upstream & { readonly running: boolean }) | undefined;
  /** The stderr lines the spare's server wrote while it was probed, replayed to the session that takes it. */
  spareStderr?: readonly string[] | undefined;
  /** Provisional (the server was silent on server/discover): the finding of the probe that listens on, when it comes. */
  later?: Promise<EraVerdict> | undefined;
}

/**
 * The era of each connection's server, asked (`server/discover`) and kept, with what a modern connection shares
 * between its sessions (its stdio processes). A probe that could not tell (the server was unreachable) is not kept:
 * the next session asks again. A provisional legacy verdict (a silent server) is replaced by its late finding. A
 * verdict a session found wrong (`forget`: a 2026-07-28-only server refusing initialize, a modern HTTP server that
 * stopped answering) is dropped, so the next session asks again: the server may have been restarted as another one.
 */
export class UpstreamEras {
  readonly #verdicts = new Map<string, Promise<EraVerdict>>();
  /** The settled verdict of each connection, as `#verdicts` holds it. */
  readonly #resolved = new Map<string, EraVerdict>();
  readonly #modern = new Set<ModernConnection>();
  readonly #spares = new Set<LegacyVerdict>();
  #closed = false;

  verdict(connection: string, probe: () => Promise<EraVerdict>): Promise<EraVerdict> {
    let v = this.#verdicts.get(connection);
    if (v === undefined) {
      const asked: Promise<EraVerdict> = probe().then((verdict) => this.#keep(connection, verdict, asked));
      v = asked;
      this.#verdicts.set(connection, v);
      v.catch(() => {
        if (this.#verdicts.get(connection) === asked) this.#verdicts.delete(connection);
      });
    }
    return v;
  }

  /** A settled verdict, kept when `asked` is still the connection's question (else only handed to its asker). */
  #keep(connection: string, verdict: EraVerdict, asked: Promise<EraVerdict> | undefined): EraVerdict {
    if ('modern' in verdict) this.#modern.add(verdict.modern);
    else if (verdict.spare !== undefined) this.#spares.add(verdict);
    if (asked === undefined || this.#verdicts.get(connection) === asked) this.#resolved.set(connection, verdict);
    if ('legacy' in verdict && verdict.later !== undefined) {
      const provisional = verdict;
      verdict.later.then(
        (final) => {
          const current = this.#resolved.get(connection);
          // Still the word on the connection (or forgotten, since a session found it wrong): the late finding replaces it.
          if (!this.#closed && (current === undefined || current === provisional)) {
            this.#verdicts.set(connection, Promise.resolve(final));
            this.#keep(connection, final, undefined);
          } else if ('modern' in final) void final.modern.transport.close().catch(() => {});
        },
        () => this.forget(connection, provisional),
      );
    }
    return verdict;
  }

  /**
   * A session found `verdict` wrong: unless already replaced, the connection's era is asked again by the next session.
   * `retire`: the server proved not to be a 2026-07-28 one (not merely unreachable): the sessions on the modern
   * connection end at their next request (ModernConnection.retired).
   */
  forget(connection: string, verdict: EraVerdict, why = 'it contradicted the verdict', retire = false): void {
    if ('modern' in verdict && retire) verdict.modern.retired ??= why;
    if (this.#resolved.get(connection) !== verdict) return;
    this.#resolved.delete(connection);
    this.#verdicts.delete(connection);
    if ('modern' in verdict) {
      this.#modern.delete(verdict.modern);
      void verdict.modern.transport.close().catch(() => {});
    } else if (this.#spares.delete(verdict))
      void UpstreamEras.takeSpare(verdict)
        ?.close()
        .catch(() => {});
  }

  /** The probe's spare link, if no session has taken it yet; taken once. */
  static takeSpare(verdict: LegacyVerdict): LegacyVerdict['spare'] {
    const spare = verdict.spare;
    verdict.spare = undefined;
    return spare;
  }

  async close(): Promise<void> {
    const modern = [...this.#modern];
    const spares = [...this.#spares].map((v) => UpstreamEras.takeSpare(v));
    this.#closed = true;
    this.#modern.clear();
    this.#spares.clear();
    this.#verdicts.clear();
    this.#resolved.clear();
    await Promise.all([...modern.map((m) => m.transport.close().catch(() => {})), ...spares.map((s) => s?.close().catch(() => {}))]);
  }
}

/**
 * The upstream of a session on a connection whose era is asked first: once the verdict is in (at `start`), the
 * session talks to a ModernUpstream or to the legacy link `legacy()` makes, through this one.
 */
export class EraUpstream implements Upstream {
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string, cutOff?: boolean) => void;
  ontruncated?: (partial: string, reason: string) => void;
  onfailed?: (ids: RequestId[], reason: string) => void;
  onerror?: (error: Error) => void;
  onstderr?: (line: string) => void;
  #inner: Upstream | undefined;
  #closed = false;

  constructor(
    private readonly connection: string,
    private readonly verdict: () => Promise<EraVerdict>,
    private readonly legacy: () => Upstream,
    /** protocol: 2026-07-28 was configured: a legacy verdict is an error, not a fallback. */
    private readonly modernOnly: boolean,
    /** The verdict proved wrong for this server (it may have been restarted as another one): ask again next time. */
    private readonly forget: (verdict: EraVerdict, why: string, retire: boolean) => void = () => {},
  ) {}

  /** The id of this session's initialize, sent to a legacy link: its answer may contradict the verdict. */
  #initializeId: RequestId | undefined;

  async start(): Promise<void> {
    let verdict: EraVerdict;
    try {
      verdict = await this.verdict();
    } catch (err) {
      throw err instanceof UpstreamError ? err : new UpstreamError((err as Error).message, true);
    }
    // protocol: 2026-07-28 and a silent server: only its late answer can tell.
    if (this.modernOnly && 'legacy' in verdict && verdict.later !== undefined) verdict = await verdict.later;
    let spare = 'legacy' in verdict ? UpstreamEras.takeSpare(verdict) : undefined;
    if (spare !== undefined && (this.modernOnly || this.#closed || !spare.running)) {
      await spare.close().catch(() => {});
      spare = undefined;
    }
    if ('legacy' in verdict && this.modernOnly)
      throw new UpstreamError(
        `connection '${this.connection}' has protocol: 2026-07-28, but its server does not speak it (${verdict.legacy}); set protocol: auto or 2025-11-25`,
        true,
      );
    if (this.#closed) throw new UpstreamError('closed while starting', true);
    const inner: Upstream = 'modern' in verdict ? new ModernUpstream(verdict.modern) : (spare ?? this.legacy());
    inner.onmessage = (m, t) => {
      // A legacy verdict, and the server refuses initialize as a 2026-07-28-only server does: it is not legacy (now).
      if (
        this.#initializeId !== undefined &&
        isResponse(m) &&
        m.id === this.#initializeId &&
        m.error?.code === ErrorCode.UnsupportedProtocolVersion &&
        'legacy' in verdict
      )
        this.forget(verdict, 'it refused initialize with -32022 (unsupported protocol version)', false);
      // A modern verdict, and the server refuses a 2026-07-28 request as unsupported: it is not modern (now).
      if ('modern' in verdict && isResponse(m) && m.error?.code === ErrorCode.UnsupportedProtocolVersion)
        this.forget(verdict, `it refused a ${verdict.modern.version} request with -32022 (unsupported protocol version)`, true);
      this.onmessage?.(m, t);
    };
    inner.onclose = (r, c) => this.onclose?.(r, c);
    inner.ontruncated = (p, r) => this.ontruncated?.(p, r);
    inner.onfailed = (ids, r) => {
      // A modern server that stopped answering: it may come back as another one.
      if ('modern' in verdict) this.forget(verdict, r, r.startsWith(answeredAsLegacy));
      this.onfailed?.(ids, r);
    };
    inner.onerror = (e) => this.onerror?.(e);
    inner.onstderr = (l) => this.onstderr?.(l);
    this.#inner = inner;
    // The probe's process is running already (one that ended in between was dropped above: a fresh one starts).
    if (inner !== spare) await inner.start();
    else for (const line of 'legacy' in verdict ? (verdict.spareStderr ?? []) : []) this.onstderr?.(line);
  }

  /** Whether the session talks to a 2026-07-28 server (known once started). */
  get modern(): boolean {
    return this.#inner instanceof ModernUpstream;
  }

  send(message: JsonRpcMessage, text: string, traceparent?: string): Promise<void> {
    if (this.#inner === undefined) return Promise.reject(new UpstreamError('the upstream link is not started', true));
    // The agent relays a stdio session's text unparsed (message undefined) but for its initialize.
    if (message !== undefined && isRequest(message) && message.method === 'initialize') this.#initializeId = message.id;
    return this.#inner.send(message, text, traceparent);
  }

  setProtocolVersion(version: string): void {
    this.#inner?.setProtocolVersion(version);
  }

  pause(): void {
    this.#inner?.pause?.();
  }

  resume(): void {
    this.#inner?.resume?.();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#inner !== undefined) return this.#inner.close();
    this.onclose?.('closed by the gateway');
  }
}
