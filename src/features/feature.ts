import type { Logger } from 'pino';
import type { Keyring } from '../encryption/keyring.js';
import type { Cluster } from '../cluster/cluster.js';
import type { ConnectionConfig, GatewayConfig } from '../config/schema.js';
import type { LiveEvents } from '../console/live-events.js';
import type { Identity } from '../core/identity.js';
import type { PublicUrls } from '../edge/public-urls.js';
import type { Hono } from 'hono';
import type { HttpServerOptions } from '../http/http-server.js';
import type { ApiMount, ControlEnv } from '../http/kit/route.js';
import type { ConnectionAccess } from '../identity/access-policy.js';
import type { DevIdentity } from '../identity/dev-identity.js';
import type { RemoteIssuerTimings } from '../identity/issuers.js';
import type { TokenVerifier } from '../identity/verifier.js';
import type { Limits } from '../limits/limits.js';
import type { Stage } from '../pipeline/stage.js';
import type { Authenticator } from '../edge/authenticate.js';
import type { PeerDirectory } from '../cluster/peer-directory.js';
import type { Replicas } from '../cluster/replicas.js';
import type { SessionObserver } from '../session/session.js';
import type { Recorder } from '../recording/recorder.js';
import type { SessionRegistry, SessionRegistryOptions } from '../session/registry.js';
import type { Store } from '../store/store.js';

/** Tuning for tests (never from the config file): how often the features poll, probe and sweep. */
export interface FeatureTimings {
  /** How often the recorder probes a failed store, heart-beats and sweeps. */
  recorderTimings?: { probeMs?: number; heartbeatMs?: number; staleAfterMs?: number; sweepMs?: number };
  /** Discovery retry and JWKS cooldown of external issuers. */
  issuerTimings?: RemoteIssuerTimings;
  /** How often just-in-time grants are re-read and expiries applied. */
  grantRefreshMs?: number;
  /** How often held reviews are re-read for decisions taken through another gateway. */
  reviewPollMs?: number;
  /** How long the change notification connection waits before reconnecting after it dropped. */
  reconnectMs?: number;
  /** How long finished spans wait before they are exported (OTLP batches); default the SDK's 5 s. */
  telemetryExportMs?: number;
  /** The first retry's delay after an audit sink failed (then doubling, to 4× it); default 1 s doubling to 60 s. */
  auditRetryMs?: number;
}

/** How a gateway is started beyond its config: tests and the benchmark only (never from the config file or the CLI). */
export interface GatewayOptions extends FeatureTimings {
  log?: Logger;
  observers?: SessionObserver[];
  /** Replaces token authentication: for the benchmark's "authentication off" baseline only. */
  authenticator?: Authenticator;
  /** Where the other replicas are (src/cluster/peer-directory.ts); absent: a single gateway, nothing is forwarded. */
  peers?: PeerDirectory;
  /** Encrypts recordings with this keyring instead of one from recording.encryption: for the benchmark and tests only. */
  keyring?: Keyring;
}

/** What the composition root has built before the features, and what a feature may use of it. */
export interface FeatureContext {
  readonly config: GatewayConfig;
  readonly timings: FeatureTimings;
  readonly log: Logger;
  /** Absent when recording is off: the features that keep state in the store are then off too. */
  readonly store?: Store | undefined;
  readonly recorder?: Recorder | undefined;
  /** The replicas sharing the store (membership, change notifications); absent when recording is off. */
  readonly cluster?: Cluster | undefined;
  /** This replica among its peers: its instance id, the hop's credentials, the peers' addresses. */
  readonly replicas: Replicas;
  readonly live: LiveEvents;
  readonly limits: Limits;
  readonly verifier: TokenVerifier;
  readonly publicUrls: PublicUrls;
  readonly devIdentity?: DevIdentity | undefined;
  /** Who may use each connection (access.groups). */
  readonly access: (connection: string) => ConnectionAccess | undefined;
  readonly mayOpen: (identity: Identity, connection: string) => boolean;
  /** The session registry; built after the features, so only called once the gateway runs. */
  readonly registry: () => SessionRegistry;
  /** The gateway's base URL once it listens. */
  readonly url: () => string | undefined;
  /** The running part of a feature registered earlier in the list, or undefined when that feature is off. */
  feature<T extends Feature>(module: FeatureModule<T>): T | undefined;
}

/**
 * Where a stage sits in a connection's pipeline, client side first. Slots are fixed so that the order is written
 * once (here) rather than implied by the order of the feature list.
 */
export const stageSlots = ['limits', 'authorize', 'client-capabilities', 'tool-filter', 'pin-calls', 'guard', 'mask', 'pin-lists'] as const;
export type StageSlot = (typeof stageSlots)[number];

/** A feature as it runs in one gateway: what it adds to the pipeline, to the sessions and to the HTTP port. */
export interface Feature {
  /** The stages it adds to a connection's pipeline, each in its slot (built once per connection). */
  stages?(connection: ConnectionConfig): { [slot in StageSlot]?: Stage | undefined };
  /** What it adds to the session registry (e.g. masking: the recording's redactor). */
  readonly sessions?: Partial<SessionRegistryOptions>;
  /** The routes of its module's `api` (mounted at `api.path`). */
  readonly routes?: Hono<ControlEnv>;
  /** What it adds to the HTTP port beyond an API (the console's pages, the agents' WebSocket, the grants). */
  readonly http?: Partial<HttpServerOptions>;
  /** Called in list order before the gateway listens; a rejection stops the start. */
  start?(): Promise<void>;
  /** Called in list order on shutdown, after the drain and before the sessions end. */
  stop?(): Promise<void> | void;
  /** Called once the sessions have ended (telemetry: their last spans are exported). */
  closed?(): Promise<void> | void;
  /** Called in list order on shutdown once the recorder has written its last batch, before the store closes. */
  afterRecording?(): Promise<void>;
}

/** A feature as registered: its name and how it is built (undefined when it is off, e.g. without a store). */
export interface FeatureModule<T extends Feature = Feature> {
  readonly name: string;
  /** The API it adds under /api, if any: mounted whether the feature is on or off (off, it answers 503 or `offRoutes`). */
  readonly api?: ApiMount;
  create(ctx: FeatureContext): T | undefined;
  /** The API's routes while the feature is off, when a 503 is not the right answer (agents: an empty list). */
  offRoutes?(ctx: FeatureContext): Hono<ControlEnv>;
}

/**
 * The only slots a virtual server's own pipeline has: its limits and who may open it. Its policy is its members': every
 * call through it passes the member session's whole pipeline (tool filter, pins, guardrails, masking, reviews), once.
 */
const virtualSlots: ReadonlySet<StageSlot> = new Set(['limits', 'authorize']);

/** A connection's pipeline from the features' contributions, in slot order. */
export function stagesOf(features: readonly Feature[], connection: ConnectionConfig): Stage[] {
  const slots = new Map<StageSlot, Stage>();
  const virtual = connection.upstream.kind === 'virtual';
  for (const f of features) {
    for (const [slot, stage] of Object.entries(f.stages?.(connection) ?? {}) as [StageSlot, Stage | undefined][]) {
      if (stage === undefined || (virtual && !virtualSlots.has(slot))) continue;
      if (slots.has(slot)) throw new Error(`two features put a stage in the '${slot}' slot`);
      slots.set(slot, stage);
    }
  }
  return stageSlots.flatMap((slot) => slots.get(slot) ?? []);
}

/** The features' contributions to one options object (a later feature's key wins, though none should overlap). */
export function contributions<K extends 'sessions' | 'http'>(features: readonly Feature[], key: K): NonNullable<Feature[K]> {
  return Object.assign({}, ...features.map((f) => f[key] ?? {})) as NonNullable<Feature[K]>;
}
