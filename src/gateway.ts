import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { ConnectionConfig, GatewayConfig } from './config/schema.js';
import { createHttpServer } from './http/http-server.js';
import { defaultMaxConnections } from './edge/connection-guard.js';
import { LegacySseEdge } from './edge/legacy-sse.js';
import { loopbackHosts, type HostPolicy } from './edge/origin.js';
import { KeepAlive } from './edge/sse-writer.js';
import { StreamableHttpEdge } from './edge/streamable-http.js';
import { createLogger } from './log.js';
import { loadInstanceId } from './recording/instance.js';
import { loadOrCreateLocalApiKey } from './crypto/local-api-key.js';
import { SessionsApi } from './api/sessions.js';
import { keyIdOfPem, loadSigningKey } from './recording/keys.js';
import { type TrustedKeys, trustedKeys } from './recording/verify.js';
import { Recorder } from './recording/recorder.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import type { Stage } from './pipeline/stage.js';
import type { Identity } from './core/identity.js';
import { AuthorizeStage } from './pipeline/authorize.js';
import { ToolFilterStage } from './pipeline/tool-filter.js';
import { MaskStage } from './pipeline/mask.js';
import { GuardStage } from './pipeline/guard.js';
import { RuleSet } from './policy/rules.js';
import { Reviews } from './reviews/reviews.js';
import { ReviewNotifier } from './reviews/notifier.js';
import { ReviewsApi } from './api/reviews.js';
import { ToolPins } from './pins/tool-pins.js';
import { ToolPinStage } from './pipeline/tool-pins.js';
import { PinsApi } from './api/pins.js';
import { AgentHub } from './agent/hub.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';
import { version } from './version.js';
import { AgentsApi } from './api/agents.js';
import { TunnelUpstream } from './upstream/tunnel.js';
import { MaskingPolicies, maskerFor } from './masking/policy.js';
import { maskFragment } from './masking/fragment.js';
import { maskMessage } from './masking/message.js';
import { MaskingRefusedError } from './masking/engine.js';
import { digestOf } from './recording/chain.js';
import type { JsonRpcMessage, JsonRpcRequest } from './protocol/jsonrpc.js';
import { type Authenticator, BearerAuthenticator } from './edge/authenticate.js';
import { GatedAuthenticator } from './edge/gated-authenticator.js';
import { Limits } from './limits/limits.js';
import { RequestLimitsObserver, RequestLimitsStage } from './limits/request-stage.js';
import { PublicUrls } from './edge/public-urls.js';
import { ConnectionAccess } from './identity/access-policy.js';
import { DevIdentity } from './identity/dev-identity.js';
import { RemoteIssuer, type RemoteIssuerTimings, type TrustedIssuer } from './identity/issuers.js';
import { TokenVerifier } from './identity/verifier.js';
import { AccessRequests } from './identity/access-requests.js';
import { AccessRequestsApi } from './api/access-requests.js';
import { SessionRegistry } from './session/registry.js';
import type { SessionObserver } from './session/session.js';
import { createUpstream, UpstreamAgents } from './upstream/index.js';
import { allInjectedCredentials, unscrubbableCredentials } from './upstream/injected-credentials.js';
import { ConsoleEdge } from './console/console-edge.js';
import { nowUs } from './recording/time.js';
import { ConsoleSessions } from './console/console-sessions.js';
import { LiveEvents } from './console/live-events.js';
import { consoleIssuers, OidcSignIn } from './console/oidc-sign-in.js';
import { StaticFiles } from './console/static-files.js';
import { connectionSummaries } from './console/connection-summary.js';
import { consoleWarnings } from './console/console-warnings.js';

export interface GatewayOptions {
  log?: Logger;
  observers?: SessionObserver[];
  /** Tuning for tests: how often the recorder probes a failed store, heart-beats and sweeps. */
  recorderTimings?: { probeMs?: number; heartbeatMs?: number; staleAfterMs?: number; sweepMs?: number };
  /** Tuning for tests: discovery retry and JWKS cooldown of external issuers. */
  issuerTimings?: RemoteIssuerTimings;
  /** Tuning for tests: how often just-in-time grants are re-read and expiries applied. */
  grantRefreshMs?: number;
  /** Tuning for tests: how often held reviews are re-read for decisions taken through another gateway. */
  reviewPollMs?: number;
  /**
   * Replaces token authentication: for the benchmark's "authentication off" baseline only. Not reachable
   * from the config file or the command line.
   */
  authenticator?: Authenticator;
}

/** Who the gateway trusts to say who is calling: the configured issuers, or (with none) the embedded dev identity. */
async function startIdentity(config: GatewayConfig, options: GatewayOptions, log: Logger): Promise<{ issuers: TrustedIssuer[]; dev?: DevIdentity }> {
  if (config.identity.issuers.length === 0) {
    const dev = await DevIdentity.load(config.dataDir, config.identity.dev);
    log.warn(
      { users: dev.users },
      'dev identity is ON (no identity.issuers configured): the gateway signs its own tokens for the users in identity.dev.users; get one with `portcullis login --dev <user>`. Configure an OIDC issuer for real use.',
    );
    return { issuers: [dev.issuer], dev };
  }
  const issuers = config.identity.issuers.map((c) => new RemoteIssuer(c, log, options.issuerTimings));
  // Discover now, so that a misconfigured issuer shows in the log at start rather than at the first request.
  for (const issuer of issuers) void issuer.metadata();
  return { issuers };
}

/** Opens the store and starts the recorder, unless recording is off. */
async function startRecording(config: GatewayConfig, options: GatewayOptions, log: Logger): Promise<{ store?: Store; recorder?: Recorder }> {
  const mode = config.recording.mode;
  if (mode === 'off') {
    log.warn('recording is OFF (recording.mode: off): sessions through this gateway leave no audit trail');
    return {};
  }
  if (mode === 'best-effort') {
    log.warn('recording is BEST-EFFORT (recording.mode: best-effort): messages are forwarded even when they cannot be recorded');
  }
  const key = loadSigningKey(config.dataDir, config.recording.signingKey);
  const instanceId = loadInstanceId(config.dataDir, config.recording.instanceId);
  const store = await openStore(config.store.reveal(), { sync: config.recording.sqliteSync, writeTimeoutMs: config.recording.writeTimeoutMs });
  try {
    const recorder = await Recorder.start({
      store,
      instanceId,
      key,
      mode,
      log,
      retentionMs: config.recording.retentionMs,
      writeTimeoutMs: config.recording.writeTimeoutMs,
      ...options.recorderTimings,
    });
    log.info({ store: store.location, instance: instanceId, keyId: key.keyId, mode }, 'recording');
    return { store, recorder };
  } catch (err) {
    await store.close();
    throw err;
  }
}

function hostPolicy(config: GatewayConfig, publicUrls: PublicUrls): HostPolicy {
  return {
    allowedHosts: config.http.allowedHosts ?? loopbackHosts,
    allowedOrigins: config.http.allowedOrigins ?? [],
    ownOrigins: () => publicUrls.origins(),
  };
}

/** Masks a client message's JSON text for the recording (the server gets the original): `masking.recordArguments`. */
function recordingRedactor(connection: ConnectionConfig): (text: string) => { text: string; redactions: unknown[] } | undefined {
  const masker = maskerFor({ ...connection.masking, enabled: true });
  return (text) => {
    let message: JsonRpcMessage;
    try {
      message = JSON.parse(text) as JsonRpcMessage;
    } catch {
      return undefined;
    }
    try {
      const masked = maskMessage(masker, message);
      return masked === undefined ? undefined : { text: JSON.stringify(masked.message), redactions: masked.redactions };
    } catch (err) {
      if (!(err instanceof MaskingRefusedError)) throw err;
      return { text: JSON.stringify({ withheld: err.message, digest: digestOf(text) }), redactions: [] };
    }
  };
}

/** What approvers are shown of a held call's params: what the recording keeps (client-argument masking applied). */
function paramsForReview(connection: ConnectionConfig): (request: JsonRpcRequest) => string {
  const redact = connection.masking.recordArguments ? recordingRedactor(connection) : undefined;
  return (request) => {
    const masked = redact?.(JSON.stringify(request));
    if (masked === undefined) return JSON.stringify(request.params ?? {});
    return JSON.stringify((JSON.parse(masked.text) as { params?: unknown }).params ?? { withheld: 'the params could not be masked, so they are not shown' });
  };
}

interface StageParts {
  access: ConnectionAccess;
  masking: MaskingPolicies;
  rules: RuleSet;
  reviews: Reviews | undefined;
  reviewTimeoutMs: number;
  pins: ToolPins | undefined;
  mayOpen: (identity: Identity, connection: string) => boolean;
  limits: Limits;
}

/**
 * The pipeline of a connection's sessions, client side first: access to items, the tool filter, tool pins,
 * guardrails, then masking. Guardrails come after access and pins, so a call the caller may not make, or to a
 * quarantined tool, never waits for a review.
 */
function stagesFor(connection: ConnectionConfig, p: StageParts): Stage[] {
  // Masking comes last but for the list pin check, so on the way back it masks before any other stage sees a message.
  const mask = p.masking.enabled(connection.name) ? new MaskStage((session) => p.masking.forSession(session)) : undefined;
  const guard = GuardStage.when({
    connection: connection.name,
    rules: p.rules,
    defaults: connection.guardrails,
    reviews: p.reviews,
    reviewTimeoutMs: p.reviewTimeoutMs,
    paramsForReview: paramsForReview(connection),
    ...(p.pins && connection.tools.pin
      ? { pinned: { annotations: (tool: string) => p.pins!.annotations(connection.name, tool), load: () => p.pins!.load(connection.name) } }
      : {}),
  });
  const pinning = p.pins && connection.tools.pin ? { connection: connection.name, pins: p.pins, mayOpen: p.mayOpen } : undefined;
  // Pinned lists are checked next to the server (last here), so that what is pinned is what the server sent, unmasked.
  const stages: Array<Stage | undefined> = [
    // Limits first: a request over them costs nothing more.
    new RequestLimitsStage(p.limits, connection),
    AuthorizeStage.forAccess(p.access),
    ToolFilterStage.forRules(connection.tools),
    pinning && new ToolPinStage(pinning, 'calls'),
    guard,
    mask,
    pinning && new ToolPinStage(pinning, 'lists'),
  ];
  return stages.filter((s) => s !== undefined);
}

/**
 * The composition root: the one place that builds every part and wires them together. Nothing else
 * holds global state; each part gets what it needs from here.
 */
export class Gateway {
  readonly #server: Server;
  readonly #registry: SessionRegistry;
  readonly #keepAlive: KeepAlive;
  readonly #log: Logger;
  readonly #agents = new UpstreamAgents();
  readonly #recorder: Recorder | undefined;
  readonly #store: Store | undefined;
  readonly #access: Map<string, ConnectionAccess>;
  readonly #accessRequests: AccessRequests | undefined;
  readonly #reviews: Reviews | undefined;
  readonly #notifier: ReviewNotifier;
  readonly #pins: ToolPins | undefined;
  readonly #hub: AgentHub | undefined;
  readonly #metrics: GatewayMetrics;
  readonly #live = new LiveEvents();
  readonly #limits: Limits;
  #consolePrune: NodeJS.Timeout | undefined;
  #consoleOn = false;
  /** The embedded dev identity, when no issuer is configured. */
  readonly devIdentity: DevIdentity | undefined;
  #draining = false;
  #stopped: Promise<void> | undefined;

  private constructor(
    readonly config: GatewayConfig,
    options: GatewayOptions,
    log: Logger,
    recording: { store?: Store; recorder?: Recorder },
    identity: { issuers: TrustedIssuer[]; dev?: DevIdentity },
    localApiKey: string,
  ) {
    this.#log = log;
    this.devIdentity = identity.dev;
    this.#limits = new Limits({ config: config.limits, log, onRefused: (limit) => this.#metrics.limitRefused(limit) });
    this.#access = new Map([...config.connections.values()].map((c) => [c.name, new ConnectionAccess(c.name, c.access)]));
    const masking = new MaskingPolicies(config.connections, config.masking.rules);
    for (const w of consoleWarnings(config)) log.warn(w);
    for (const a of this.#access.values()) {
      if (a.closedToAll)
        log.warn(
          { connection: a.connection },
          `connection '${a.connection}' has no access.groups, so nobody may open it; list groups, or ["*"] for every signed-in user`,
        );
    }
    this.#recorder = recording.recorder;
    this.#store = recording.store;
    this.#keepAlive = new KeepAlive(config.http.keepAliveMs);
    this.#notifier = ReviewNotifier.fromConfig(
      config,
      () => config.http.publicUrl ?? (this.#server.listening ? this.url : undefined),
      log.child({ part: 'notifications' }),
    );
    this.#reviews =
      recording.store && recording.recorder
        ? new Reviews({
            store: recording.store,
            instanceId: recording.recorder.instanceId,
            log: log.child({ part: 'reviews' }),
            ...(options.reviewPollMs ? { pollMs: options.reviewPollMs } : {}),
            onCreated: (review) => {
              this.#notifier.notify('review.created', review);
              this.#live.reviewsChanged();
            },
            onDecided: (review) => {
              this.#notifier.notify('review.decided', review);
              this.#live.reviewsChanged();
            },
          })
        : undefined;
    this.#pins = recording.store
      ? new ToolPins({
          store: recording.store,
          log: log.child({ part: 'tool-pins' }),
          admins: config.roles.admins,
          scan: config.pins.scan,
          duplicateNames: config.pins.duplicateNames,
        })
      : undefined;
    if (!this.#pins && [...config.connections.values()].some((c) => c.tools.pin)) {
      log.warn('tool pinning needs the recording store, and recording is off: tool definitions are not pinned');
    }
    const unscrubbable = [...config.connections.values()].flatMap((c) => unscrubbableCredentials(c.name, c.upstream));
    if (unscrubbable.length > 0) {
      log.warn({ credentials: unscrubbable }, 'these injected values are too short to be scrubbed from what the servers send back (under 8 characters)');
    }
    const agentNames = [...new Set([...config.connections.values()].flatMap((c) => (c.upstream.kind === 'agent' ? [c.upstream.agent] : [])))];
    this.#hub =
      recording.store && agentNames.length > 0
        ? new AgentHub({
            store: recording.store,
            log: log.child({ part: 'agents' }),
            expected: agentNames,
            heartbeatMs: config.agents.heartbeatMs,
            maxMessageBytes: config.limits.maxMessageBytes,
          })
        : undefined;
    const hub = this.#hub;
    this.#metrics = new GatewayMetrics({ sessions: () => this.#registry.all(), ...(hub ? { agents: () => hub.status() } : {}), version });
    const rules = new RuleSet(config.rules);
    if (
      !this.#reviews &&
      (config.rules.some((r) => r.action === 'review') || [...config.connections.values()].some((c) => c.guardrails.default === 'review'))
    ) {
      log.warn('guardrail reviews need the recording store, and recording is off: calls a review rule matches will be refused');
    }
    this.#registry = new SessionRegistry({
      connections: config.connections,
      createUpstream: (c, sessionLog, sessionId) =>
        createUpstream(c, config.limits.maxMessageBytes, this.#agents, sessionLog, (agent) => new TunnelUpstream(this.#hub!, agent, c.name, sessionId)),
      stagesFor: (c) =>
        stagesFor(c, {
          access: this.#access.get(c.name)!,
          masking,
          rules,
          reviews: this.#reviews,
          reviewTimeoutMs: config.reviews.timeoutMs,
          pins: this.#pins,
          mayOpen: (identity, name) => this.#access.get(name)?.open(identity).allowed ?? false,
          limits: this.#limits,
        }),
      observers: [...(options.observers ?? []), this.#metrics, this.#live, new RequestLimitsObserver(this.#limits)],
      admission: this.#limits,
      ...(config.limits.reclaimIdleAfterMs === undefined ? {} : { reclaimIdleAfterMs: config.limits.reclaimIdleAfterMs }),
      idleTimeoutMs: config.sessions.idleTimeoutMs,
      holdProgressMs: config.reviews.progressIntervalMs,
      flow: {
        backlogBytes: config.limits.clientBacklogBytes,
        stallTimeoutMs: config.limits.slowClientTimeoutMs,
        // What may still arrive after the pause: a read under way (up to one whole message) and a last one parsed.
        hardCapBytes: config.limits.clientBacklogBytes + 2 * config.limits.maxMessageBytes,
      },
      log,
      ...(recording.recorder ? { recorder: recording.recorder } : {}),
      redactForRecording: (c) => (c.masking.recordArguments ? recordingRedactor(c) : undefined),
      maskFragment: (c) =>
        masking.enabled(c.name)
          ? (text, session) => {
              const masker = masking.forSession(session);
              return masker === undefined ? text : maskFragment(masker, text);
            }
          : undefined,
    });
    this.#accessRequests =
      recording.store && recording.recorder
        ? new AccessRequests({
            store: recording.store,
            recorder: recording.recorder,
            access: (name) => this.#access.get(name),
            log,
            refreshMs: options.grantRefreshMs ?? 1000,
            inUse: [...this.#access.values()].some((a) => a.takesRequests),
            onChanged: () => this.#live.accessRequestsChanged(),
            onGrantEnded: (grant, why) => {
              void this.#registry.endGrant(grant.id, why).then((n) => {
                if (n > 0) log.info({ grant: grant.id, subject: grant.requesterSubject, sessions: n }, `${why}: its sessions ended`);
              });
            },
          })
        : undefined;
    const common = {
      registry: this.#registry,
      keepAlive: this.#keepAlive,
      maxMessageBytes: config.limits.maxMessageBytes,
      refuseEarly: (identity: Identity) => this.#limits.refusesRequestsEarly(identity),
    };
    const verifier = new TokenVerifier({ issuers: identity.issuers, clockSkewMs: config.identity.clockSkewMs });
    const publicUrls = new PublicUrls(config.http.publicUrl, () => ({ host: config.listen.host, port: this.port }));
    const consoleParts = recording.store && config.console.enabled ? this.#console(recording.store, verifier, publicUrls, identity.dev, log) : undefined;
    this.#consoleOn = consoleParts !== undefined;
    this.#server = createHttpServer({
      registry: this.#registry,
      streamableHttp: new StreamableHttpEdge({
        ...common,
        eventBufferSize: config.http.eventBufferSize,
        clientBacklogBytes: config.limits.clientBacklogBytes,
        log: log.child({ edge: 'streamable-http' }),
      }),
      legacySse: new LegacySseEdge({ ...common, log: log.child({ edge: 'sse' }) }),
      hostPolicy: hostPolicy(config, publicUrls),
      log,
      ready: () => this.#readiness(),
      authenticator:
        options.authenticator ??
        new GatedAuthenticator(new BearerAuthenticator(verifier, publicUrls), this.#limits.unauthenticated, (token) => verifier.knows(token)),
      access: (name) => this.#access.get(name)!,
      ...(this.#accessRequests ? { grants: this.#accessRequests, accessRequests: new AccessRequestsApi(this.#accessRequests) } : {}),
      ...(this.#reviews ? { reviews: new ReviewsApi(this.#reviews) } : {}),
      ...(this.#hub ? { agents: { hub: this.#hub, api: new AgentsApi(this.#hub, config.roles.admins) } } : {}),
      metrics: this.#metrics,
      roles: config.roles,
      ...(consoleParts ? { console: consoleParts } : {}),
      ...(this.#pins ? { pins: new PinsApi(this.#pins, (identity, name) => this.#access.get(name)?.open(identity).allowed ?? false) } : {}),
      issuers: identity.issuers,
      publicUrls,
      connections: {
        headersMs: config.http.headersTimeoutMs,
        requestMs: config.http.requestTimeoutMs,
        idleMs: config.http.idleTimeoutMs,
        maxConnections: config.http.maxConnections ?? defaultMaxConnections(),
      },
      api: {
        ...(recording.store ? { sessions: new SessionsApi(recording.store, () => this.#trustedKeys()) } : {}),
        keys: { localKey: localApiKey, ...(config.api.token ? { token: config.api.token } : {}) },
      },
    });
  }

  /** The web console: its sign-in (OIDC, or the dev identity), its sessions in the store, its live events and pages. */
  #console(
    store: Store,
    verifier: TokenVerifier,
    publicUrls: PublicUrls,
    dev: DevIdentity | undefined,
    log: Logger,
  ): { edge: ConsoleEdge; files: StaticFiles } {
    const issuers = consoleIssuers(this.config.identity.issuers);
    const files = new StaticFiles();
    if (!files.built) log.warn('the web console was not built (npm run build bundles it into dist/console); / answers 503 until it is');
    this.#consolePrune = setInterval(() => void store.pruneConsole(nowUs()).catch(() => {}), 10 * 60_000);
    this.#consolePrune.unref();
    const edge = new ConsoleEdge({
      sessions: new ConsoleSessions(store, this.config.console.sessionLifetimeMs),
      signIn: new OidcSignIn(issuers, store, verifier),
      issuers,
      devIdentity: dev,
      verifier,
      live: this.#live,
      files,
      publicUrls,
      roles: this.config.roles,
      connections: () => {
        const open = new Map<string, number>();
        for (const s of this.#registry.all()) open.set(s.connection, (open.get(s.connection) ?? 0) + 1);
        return connectionSummaries(this.config.connections.values(), (name) => open.get(name) ?? 0);
      },
      log: log.child({ part: 'console' }),
    });
    return { edge, files };
  }

  /** The keys this gateway's verification trusts: its own and the configured ones (never merely the store's). */
  async #trustedKeys(): Promise<TrustedKeys> {
    const own = this.#recorder ? [{ keyId: this.#recorder.key.keyId, publicKeyPem: this.#recorder.key.publicKeyPem }] : [];
    return trustedKeys([...own, ...this.config.recording.trustedKeys.map((pem) => ({ keyId: keyIdOfPem(pem), publicKeyPem: pem }))]);
  }

  /** Why the gateway takes no new sessions, or undefined when it does. */
  #readiness(): string | undefined {
    if (this.#draining) return 'draining';
    if (this.#recorder !== undefined && !this.#recorder.accepting) return 'recording store unavailable';
    return undefined;
  }

  /** Builds the gateway and listens; rejects with a clear message when the address is taken or the store cannot open. */
  static async start(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const log = options.log ?? createLogger(config.log.level, process.stderr, allInjectedCredentials(config.connections.values()));
    const identity = await startIdentity(config, options, log);
    const localApiKey = loadOrCreateLocalApiKey(config.dataDir);
    const recording = await startRecording(config, options, log);
    const gateway = new Gateway(config, options, log, recording, identity, localApiKey);
    try {
      await gateway.#accessRequests?.start();
      await gateway.#reviews?.start();
    } catch (err) {
      await recording.recorder?.close();
      await recording.store?.close();
      throw err;
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = `${config.listen.host}:${config.listen.port}`;
        reject(
          new Error(
            err.code === 'EADDRINUSE'
              ? `listen ${where}: the address is already in use; stop the other process or set \`listen\` in the config`
              : `listen ${where}: ${err.message}`,
          ),
        );
      };
      gateway.#server.once('error', onError);
      gateway.#server.listen(config.listen.port, config.listen.host, () => {
        gateway.#server.off('error', onError);
        resolve();
      });
    }).catch(async (err: unknown) => {
      await gateway.#recorder?.close();
      await gateway.#store?.close();
      throw err;
    });
    gateway.#log.info({ url: gateway.url, connections: [...config.connections.keys()] }, 'gateway listening');
    return gateway;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The base URL clients use, e.g. http://127.0.0.1:8080. */
  get url(): string {
    const host = this.config.listen.host.includes(':') ? `[${this.config.listen.host}]` : this.config.listen.host;
    return `http://${host}:${this.port}`;
  }

  /** Where a person opens the web console (with the dev identity, the link that signs in), or undefined when it is off. */
  get consoleUrl(): string | undefined {
    if (!this.#consoleOn) return undefined;
    const base = this.config.http.publicUrl ?? this.url;
    return this.devIdentity ? this.devIdentity.consoleLink(base) : `${base}/`;
  }

  get sessions(): SessionRegistry {
    return this.#registry;
  }

  /** The gateway's limits (what they hold now: tests). */
  get limits(): Limits {
    return this.#limits;
  }

  /** The recorder, when recording is on. */
  get recorder(): Recorder | undefined {
    return this.#recorder;
  }

  /**
   * Graceful shutdown: refuse new work, let requests in flight finish (up to shutdown.drainTimeout),
   * then end every session (stdio servers are terminated) and close the port.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#draining = true;
    this.#log.info({ sessions: this.#registry.size }, 'draining');
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const deadline = Date.now() + this.config.shutdown.drainTimeoutMs;
    while (Date.now() < deadline && [...this.#registry.all()].some((s) => s.pendingRequests > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#accessRequests?.stop();
    // Held calls fail now rather than at the end of the drain: their reviews say the gateway shut down.
    await this.#reviews?.stop();
    this.#hub?.close();
    this.#live.close();
    if (this.#consolePrune) clearInterval(this.#consolePrune);
    await this.#notifier.stop();
    await this.#registry.closeAll('gateway shutting down');
    this.#limits.close();
    // Every session's seal is written before the store closes.
    await this.#recorder?.close();
    await this.#store?.close();
    this.#keepAlive.stop();
    this.#agents.destroy();
    this.#server.closeAllConnections();
    await closed;
    this.#log.info('gateway stopped');
  }
}
