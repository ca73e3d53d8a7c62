import type { JsonRpcMessage, RequestId } from '../protocol/jsonrpc.js';
import type { ModernConnection } from './modern-connection.js';
import { ModernUpstream } from './modern-upstream.js';
import { type Upstream, UpstreamError } from './upstream.js';

/** What the gateway learned of a connection's server: a 2026-07-28 one (and how to reach it), or a legacy one. */
export type EraVerdict = { modern: ModernConnection } | LegacyVerdict;

/** A legacy server; `spare`: the started link the probe used, for the first session to take (once). */
export interface LegacyVerdict {
  legacy: string;
  spare?: (Upstream & { readonly running: boolean }) | undefined;
}

/**
 * The era of each connection's server, asked once (`server/discover`) and kept for the gateway's life, with what a
 * modern connection shares between its sessions (its stdio processes). A probe that could not tell (the server was
 * unreachable) is not kept: the next session asks again.
 */
export class UpstreamEras {
  readonly #verdicts = new Map<string, Promise<EraVerdict>>();
  readonly #modern = new Set<ModernConnection>();
  readonly #spares = new Set<LegacyVerdict>();

  verdict(connection: string, probe: () => Promise<EraVerdict>): Promise<EraVerdict> {
    let v = this.#verdicts.get(connection);
    if (v === undefined) {
      v = probe().then((verdict) => {
        if ('modern' in verdict) this.#modern.add(verdict.modern);
        else if (verdict.spare !== undefined) this.#spares.add(verdict);
        return verdict;
      });
      this.#verdicts.set(connection, v);
      v.catch(() => {
        if (this.#verdicts.get(connection) === v) this.#verdicts.delete(connection);
      });
    }
    return v;
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
    this.#modern.clear();
    this.#spares.clear();
    this.#verdicts.clear();
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
  ) {}

  async start(): Promise<void> {
    let verdict: EraVerdict;
    try {
      verdict = await this.verdict();
    } catch (err) {
      throw err instanceof UpstreamError ? err : new UpstreamError((err as Error).message, true);
    }
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
    inner.onmessage = (m, t) => this.onmessage?.(m, t);
    inner.onclose = (r, c) => this.onclose?.(r, c);
    inner.ontruncated = (p, r) => this.ontruncated?.(p, r);
    inner.onfailed = (ids, r) => this.onfailed?.(ids, r);
    inner.onerror = (e) => this.onerror?.(e);
    inner.onstderr = (l) => this.onstderr?.(l);
    this.#inner = inner;
    // The probe's process is running already (one that ended in between was dropped above: a fresh one starts).
    if (inner !== spare) await inner.start();
  }

  /** Whether the session talks to a 2026-07-28 server (known once started). */
  get modern(): boolean {
    return this.#inner instanceof ModernUpstream;
  }

  send(message: JsonRpcMessage, text: string): Promise<void> {
    if (this.#inner === undefined) return Promise.reject(new UpstreamError('the upstream link is not started', true));
    return this.#inner.send(message, text);
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
