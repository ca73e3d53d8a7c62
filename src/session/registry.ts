import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import { Pipeline } from '../pipeline/pipeline.js';
import type { SessionInfo, Stage, VirtualOrigin } from '../pipeline/stage.js';
import { type Identity, samePrincipal } from '../core/identity.js';
import { digestOf } from '../recording/chain.js';
import type { Recorder } from '../recording/recorder.js';
import { openingDetails } from '../recording/session-facts.js';
import { SessionRecording } from '../recording/session-recording.js';
import { nowUs } from '../recording/time.js';
import { openSessionRow } from '../store/types.js';
import type { Upstream } from '../upstream/upstream.js';
import type { ExchangeTracer } from '../exchange/exchange-trace.js';
import type { FlowLimits } from './client-flow.js';
import { Session, type SessionObserver } from './session.js';

export interface SessionRegistryOptions {
  connections: ReadonlyMap<string, ConnectionConfig>;
  /** A fresh upstream link for a new session of `identity` (a lease on a shared one for `upstreamSessions: pooled`). */
  createUpstream: (connection: ConnectionConfig, log: Logger, sessionId: string, identity: Identity) => Upstream;
  /** The stages for a connection's sessions, in order from client to server. */
  stagesFor: (connection: ConnectionConfig) => Stage[];
  observers: readonly SessionObserver[];
  idleTimeoutMs: number;
  /** A session whose client has left (no stream, nothing in flight, nothing sent) this long is closed; absent: never. */
  abandonedAfterMs?: number;
  /** How often a client whose request is held for review is told it still waits. */
  holdProgressMs?: number;
  /** Backpressure toward slow clients; absent: unbounded. */
  flow?: FlowLimits;
  log: Logger;
  /** Records every session; absent when recording is off. */
  recorder?: Recorder;
  /** Limits on opening sessions (src/limits): each session holds a place until it ends. */
  admission?: SessionAdmission;
  /** At a session limit, a session quiet this long may be closed to make room (limits.reclaimIdleAfter); absent: never. */
  reclaimIdleAfterMs?: number;
  /** For connections that mask client messages in the recording only: the masking of a message's JSON text. */
  redactForRecording?: (connection: ConnectionConfig) => ((text: string) => { text: string; redactions: unknown[] } | undefined) | undefined;
  /** For connections whose server messages are masked: the masking of a cut-off fragment for the recording. */
  maskFragment?: (connection: ConnectionConfig) => ((text: string, session: SessionInfo) => string) | undefined;
  /** Traces a new session's exchanges (src/telemetry); absent, or answering undefined, when tracing is off. */
  tracing?: (connection: ConnectionConfig, era: 'modern' | 'legacy') => ExchangeTracer | undefined;
  /** A new session's id; default newSessionId(). The gateway's ids name their owner replica, sealed (src/cluster/session-ids.ts). */
  newId?: () => string;
}

/** Whether a principal may open one more session: a place to give back when it ends, or the error to answer with. */
export interface SessionAdmission {
  /**
   * `record` says the refusal is worth recording (the first of a burst). `member`: a member session of a virtual
   * server's session (edge `virtual`), which the caller's own session count and opening rate do not count again.
   */
  admitSession(connection: ConnectionConfig, identity: Identity, member?: boolean): { lease: { release(): void } } | { refused: Error; record: boolean };
  /**
   * The session count at its limit for one more session, and whose sessions count towards it: an idle one of those
   * is closed to make room rather than the new session refused.
   */
  fullSessionCap?(
    connection: ConnectionConfig,
    identity: Identity,
    member?: boolean,
  ): { scope: 'principal' | 'principal-stdio' | 'connection' | 'global'; limit: string } | undefined;
}

/** Where a session came from, for its recording. */
export interface SessionOrigin {
  /**
   * `modern`: a pooled session serving MCP 2026-07-28 clients (src/session/modern-pool.ts); `virtual`: a member
   * session of a virtual server's session (src/virtual), opened in-process by it.
   */
  edge: 'streamable-http' | 'sse' | 'modern' | 'virtual';
  remoteAddress?: string | undefined;
  /** Why the identity may use the connection (the group that granted it), for the recording. */
  access?: string;
  /** The just-in-time grant the session depends on: when it ends, so does the session. */
  grant?: string;
  /** A member session's virtual server and session (edge `virtual`): its stages see it as `SessionInfo.virtual`. */
  virtual?: VirtualOrigin;
}

/** 128 bits from the CSPRNG, URL-safe: unguessable, and visible ASCII as the transport requires. */
export function newSessionId(): string {
  // Never starting with '-': a command line would take `portcullis sessions show -abc…` for an option.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Stages that never change a result toward the client (they refuse or hold requests, or check tool definitions). */
const resultNeutralStages: ReadonlySet<string> = new Set(['limits', 'guard', 'tool-pins', 'client-capabilities']);

/** The live sessions of this gateway: creates, finds, reaps idle ones and closes them all on shutdown. */
/** The largest refused request whose text is recorded whole. */
const maxRefusedTextBytes = 64 * 1024;

export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
  readonly #options: SessionRegistryOptions;
  readonly #pipelines = new Map<string, readonly Stage[]>();
  /** Sessions that exist by a just-in-time grant, by grant id. */
  readonly #byGrant = new Map<string, Set<Session>>();
  /** Grants that have ended: a session that slips in by one just as it ends is closed at once. */
  readonly #endedGrants = new Set<string>();
  #reaper: NodeJS.Timeout | undefined;

  constructor(options: SessionRegistryOptions) {
    this.#options = options;
    for (const c of options.connections.values()) this.#pipelines.set(c.name, options.stagesFor(c));
    const shortest = Math.min(options.idleTimeoutMs, options.abandonedAfterMs ?? Infinity);
    if (shortest > 0) {
      this.#reaper = setInterval(() => this.reapIdle(), Math.min(60_000, Math.max(1000, shortest / 4)));
      this.#reaper.unref();
    }
  }

  connection(name: string): ConnectionConfig | undefined {
    return this.#options.connections.get(name);
  }

  /**
   * Whether a connection's stages may make what a client receives depend on who it is (filter a list, mask a result):
   * such results are never for a shared cache. Stages that only refuse or hold requests, or check pins, do not.
   * A virtual server's results always may: they are its members' as this caller may see them (which members the
   * caller may open, each member's own filters), though its own pipeline has none of those stages.
   */
  resultsVaryByCaller(connection: string): boolean {
    if (this.#options.connections.get(connection)?.upstream.kind === 'virtual') return true;
    return (this.#pipelines.get(connection) ?? []).some((s) => !resultNeutralStages.has(s.name));
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  all(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /**
   * Creates and opens a session. Rejects (nothing registered) with RecordingUnavailableError when the session
   * cannot be recorded, and with UpstreamError when the upstream cannot start (that session is recorded).
   */
  async create(connection: ConnectionConfig, identity: Identity, origin: SessionOrigin): Promise<Session> {
    const member = origin.edge === 'virtual';
    await this.#makeRoom(connection, identity, member);
    const admitted = this.#options.admission?.admitSession(connection, identity, member);
    if (admitted !== undefined && 'refused' in admitted) {
      if (admitted.record) await this.refuse(connection, identity, origin, admitted.refused.message, 'limits');
      throw admitted.refused;
    }
    const lease = admitted?.lease;
    const id = (this.#options.newId ?? newSessionId)();
    const log = this.#options.log.child({ session: id, connection: connection.name });
    const stages = this.#pipelines.get(connection.name) ?? [];
    let recording: SessionRecording | undefined;
    let upstream: Upstream;
    try {
      recording = this.#startRecording(id, connection, identity, origin);
      upstream = this.#options.createUpstream(connection, log, id, identity);
    } catch (err) {
      // Not recorded (the store is unavailable) or no upstream to start: the place taken above is given back.
      lease?.release();
      void recording?.close(`upstream could not be set up: ${(err as Error).message}`).catch(() => {});
      throw err;
    }
    const session = new Session({
      id,
      connection: connection.name,
      identity,
      upstream,
      pipeline: (onVerdict) => new Pipeline(stages, onVerdict),
      log,
      ...(origin.virtual === undefined ? {} : { virtual: origin.virtual }),
      ...(this.#options.holdProgressMs === undefined ? {} : { holdProgressMs: this.#options.holdProgressMs }),
      ...(this.#options.flow === undefined ? {} : { flow: this.#options.flow }),
      ...(recording ? { recording } : {}),
      ...this.#fragmentMasking(connection),
      ...this.#tracing(connection, origin),
      observers: [
        ...this.#options.observers,
        {
          closed: (s) => {
            this.#sessions.delete(s.id);
            if (origin.grant !== undefined) this.#byGrant.get(origin.grant)?.delete(session);
          },
          // Its place under the limits (a stdio process among them) is given back once its server has exited.
          exited: () => lease?.release(),
        },
      ],
    });
    this.#sessions.set(id, session);
    if (origin.grant !== undefined) {
      let sessions = this.#byGrant.get(origin.grant);
      if (sessions === undefined) this.#byGrant.set(origin.grant, (sessions = new Set()));
      sessions.add(session);
    }
    try {
      await session.open();
    } catch (err) {
      this.#sessions.delete(id);
      lease?.release();
      throw err;
    }
    log.info({ subject: identity.subject }, 'session opened');
    if (origin.grant !== undefined && this.#endedGrants.has(origin.grant)) void session.close('the access grant ended');
    return session;
  }

  /**
   * A session count at its limit (limits.principal.sessions, stdioProcesses, …) makes room by closing the least
   * recently used of the idle sessions that count towards it: clients often leave sessions without a DELETE (neither
   * SDK's close() sends one), and those would otherwise lock their principal out until the idle timeout. Only a
   * session with nothing pending, no client stream open and quiet for a moment is taken; none: the limit refuses.
   */
  async #makeRoom(connection: ConnectionConfig, identity: Identity, member: boolean): Promise<void> {
    const admission = this.#options.admission;
    const quietMs = this.#options.reclaimIdleAfterMs;
    if (admission?.fullSessionCap === undefined || quietMs === undefined) return;
    // A few rounds at most: each closes one session, and more than one limit may be at its value.
    for (let round = 0; round < 4; round++) {
      const full = admission.fullSessionCap(connection, identity, member);
      if (full === undefined) return;
      const counts = (s: Session): boolean => {
        if (full.scope === 'global') return true;
        if (full.scope === 'connection') return s.connection === connection.name;
        if (!samePrincipal(s.identity, identity)) return false;
        return full.scope === 'principal' || this.#options.connections.get(s.connection)?.upstream.kind === 'stdio';
      };
      const cutoff = Date.now() - quietMs;
      let oldest: Session | undefined;
      for (const s of this.#sessions.values()) {
        if (counts(s) && s.isOpen && s.isIdleSince(cutoff) && (oldest === undefined || s.lastActivity < oldest.lastActivity)) oldest = s;
      }
      if (oldest === undefined) return;
      this.#options.log.info({ session: oldest.id, connection: oldest.connection, limit: full.limit }, 'closing an idle session to make room for a new one');
      await oldest.close(`reclaimed: idle, and its place under ${full.limit} was needed for a new session`);
    }
  }

  #tracing(connection: ConnectionConfig, origin: SessionOrigin): { tracer?: ExchangeTracer } {
    const tracer = this.#options.tracing?.(connection, origin.edge === 'modern' ? 'modern' : 'legacy');
    return tracer === undefined ? {} : { tracer };
  }

  #fragmentMasking(connection: ConnectionConfig): { maskFragment?: (text: string, session: SessionInfo) => string } {
    const maskFragment = this.#options.maskFragment?.(connection);
    return maskFragment === undefined ? {} : { maskFragment };
  }

  #startRecording(id: string, connection: ConnectionConfig, identity: Identity, origin: SessionOrigin): SessionRecording | undefined {
    const recorder = this.#options.recorder;
    if (recorder === undefined) return undefined;
    const row = openSessionRow({
      id,
      instanceId: recorder.instanceId,
      connection: connection.name,
      subject: identity.subject,
      issuer: identity.issuer,
      email: identity.email ?? null,
      groups: identity.groups,
      edge: origin.edge,
      remoteAddress: origin.remoteAddress ?? null,
      openedAtUs: nowUs(),
    });
    const chain = recorder.openSession(row);
    const recording = new SessionRecording(recorder, chain, this.#options.redactForRecording?.(connection));
    // The opening event states every column of the row, from the row itself: verify compares the two.
    recording.lifecycle(
      'open',
      openingDetails(row, {
        name: identity.name ?? null,
        ...(origin.access !== undefined ? { access: origin.access } : {}),
        ...(origin.virtual !== undefined ? { virtual: { server: origin.virtual.server, session: origin.virtual.session } } : {}),
      }),
    );
    return recording;
  }

  /**
   * Records an attempt to open a session that access policy (or a limit: `stage` limits) refused: a session of its
   * own that opens, holds the refusal, and closes at once, so that who tried what is in the audit trail and not only in a log.
   */
  async refuse(
    connection: ConnectionConfig,
    identity: Identity,
    origin: SessionOrigin,
    reason: string,
    stage: 'access' | 'limits' | 'edge' = 'access',
    request?: { text: string; answer?: string },
  ): Promise<void> {
    try {
      const recording = this.#startRecording(newSessionId(), connection, identity, origin);
      if (recording === undefined) return;
      // A refused request (its text, as received, and the error it was answered with) is kept with the reason; a
      // large one by its size and digest only, so that refusals (401s paced only by limits.unauthenticated) cannot
      // fill the store at maxMessageSize each.
      const kept = request !== undefined && Buffer.byteLength(request.text) <= maxRefusedTextBytes;
      if (kept) recording.message('toServer', 'received', request.text);
      const unkept = request !== undefined && !kept ? ` (its ${Buffer.byteLength(request.text)}-byte body is not kept; ${digestOf(request.text)})` : '';
      recording.verdict({ stage, action: 'answer', reason: `${reason}${unkept}`, direction: 'toServer' });
      if (request?.answer !== undefined) recording.message('toClient', 'delivered', request.answer);
      await recording.close(stage === 'access' ? `access denied: ${reason}` : `refused: ${reason}`);
    } catch (err) {
      this.#options.log.warn(
        { connection: connection.name, subject: identity.subject, err: (err as Error).message },
        'a refused session could not be recorded',
      );
    }
  }

  /** Ends every session that exists by a grant that has ended. */
  async endGrant(grantId: string, reason: string): Promise<number> {
    this.#endedGrants.add(grantId);
    const sessions = [...(this.#byGrant.get(grantId) ?? [])];
    this.#byGrant.delete(grantId);
    await Promise.all(sessions.map((s) => s.close(reason)));
    return sessions.length;
  }

  /**
   * Closes the sessions idle past sessions.idleTimeout, and those whose client has left (sessions.abandonedAfter):
   * neither SDK's close() sends the DELETE, so without this each such session would hold its server until the idle timeout.
   */
  reapIdle(now = Date.now()): number {
    const cutoff = now - this.#options.idleTimeoutMs;
    const abandonedMs = this.#options.abandonedAfterMs;
    let reaped = 0;
    for (const s of this.#sessions.values()) {
      if (!s.isOpen) continue;
      if (s.isIdleSince(cutoff)) {
        reaped++;
        void s.close('idle timeout');
      } else if (abandonedMs !== undefined && s.isAbandonedSince(now - abandonedMs)) {
        reaped++;
        this.#options.log.info({ session: s.id, connection: s.connection }, 'closing an abandoned session');
        void s.close(
          `abandoned: no stream open, nothing in flight and nothing from the client for ${Math.round(abandonedMs / 1000)}s (sessions.abandonedAfter)`,
        );
      }
    }
    return reaped;
  }

  /**
   * Resolves once no session has a request in flight, or at `deadline` (epoch ms) at the latest (the shutdown's drain).
   * A virtual server's member sessions are not waited on: a client's call through one is in flight in its virtual
   * session too, and the rest are the virtual server's own (a member's initialize, a list page), which a member that
   * hangs never answers: the drain would last its whole timeout for nobody.
   */
  async settled(deadline: number): Promise<void> {
    const inFlight = () => [...this.#sessions.values()].some((s) => s.virtual === undefined && s.pendingRequests > 0);
    while (Date.now() < deadline && inFlight()) await new Promise((r) => setTimeout(r, 50));
  }

  /** Closes every session (shutdown). */
  async closeAll(reason: string): Promise<void> {
    if (this.#reaper) clearInterval(this.#reaper);
    await Promise.all([...this.#sessions.values()].map((s) => s.close(reason)));
  }
}
