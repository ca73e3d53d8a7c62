import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Cluster } from './cluster/cluster.js';
import type { GatewayConfig } from './config/schema.js';
import { LiveEvents } from './console/live-events.js';
import { LiveExchanges } from './console/live-exchanges.js';
import { LiveRelay } from './console/live-relay.js';
import { loadOrCreateLocalApiKey } from './crypto/local-api-key.js';
import { PublicUrls } from './edge/public-urls.js';
import { KeepAlive } from './edge/sse-writer.js';
import { agentsModule, upstreams } from './features/agents.js';
import { auditModule } from './features/audit.js';
import { bearerAuthenticator, recordingsApi, startIdentity, startRecording, warnUnscrubbable } from './features/base.js';
import { connectionAccess } from './features/connection-access.js';
import { consoleModule } from './features/console.js';
import { pinsModule } from './features/pins.js';
import { loadTokenKeys, replicasOf } from './features/replicas.js';
import type { Replicas } from './cluster/replicas.js';
import type { TokenKeys } from './cluster/token-keys.js';
import type { GatewayOptions } from './features/feature.js';
import { Features } from './features/features.js';
import { featureModules } from './features/index.js';
import { virtualServersModule } from './features/virtual.js';
import { edges, modernPool, registrySettings, serverSettings } from './features/settings.js';
import { createHttpServer } from './http/http-server.js';
import { listen } from './http/listen.js';
import type { DevIdentity } from './identity/dev-identity.js';
import { TokenVerifier } from './identity/verifier.js';
import { Limits } from './limits/limits.js';
import { RequestLimitsObserver } from './limits/request-stage.js';
import { createLogger } from './log.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';
import { healthSources } from './features/health.js';
import { registerHealthMetrics } from './metrics/health-metrics.js';
import type { Recorder } from './recording/recorder.js';
import type { ModernPool } from './session/modern-pool.js';
import { SessionRegistry, type SessionRegistryOptions } from './session/registry.js';
import { SharedUpstreams, StdioSparePools, UpstreamAgents } from './upstream/index.js';
import { configCredentials } from './config/logged-credentials.js';
import { version } from './version.js';

export type { GatewayOptions } from './features/feature.js';

/** A virtual server's session is served by its members' sessions (src/virtual); every other connection by its own link. */
function withVirtualServers(
  links: SessionRegistryOptions['createUpstream'],
  virtual: SessionRegistryOptions['createUpstream'] | undefined,
): SessionRegistryOptions['createUpstream'] {
  if (virtual === undefined) return links;
  return (c, log, sessionId, identity) => (c.upstream.kind === 'virtual' ? virtual(c, log, sessionId, identity) : links(c, log, sessionId, identity));
}

/** The composition root: identity, recording, limits, sessions and the port, then each feature of src/features/index.ts in order. */
export class Gateway {
  readonly #server: Server;
  /** The sessions of every edge (the pooled ones of modern clients among them). */
  readonly sessions: SessionRegistry;
  /** Pooled internal sessions serving MCP 2026-07-28 clients. */
  readonly modernPool: ModernPool;
  readonly #keepAlive: KeepAlive;
  readonly #log: Logger;
  readonly #agents = new UpstreamAgents();
  /** The stdio connections' warm spares: processes spawned ahead of the sessions that take them. */
  readonly spares: StdioSparePools;
  /** The upstream sessions that `upstreamSessions: pooled` connections' client sessions share. */
  readonly sharedUpstreams: SharedUpstreams;
  readonly #recording: Awaited<ReturnType<typeof startRecording>>;
  readonly #features: Features;
  readonly #metrics: GatewayMetrics;
  readonly #live = new LiveEvents();
  /** The events of every replica's exchanges, to this replica's console listeners; undefined when recording is off. */
  readonly #liveExchanges: LiveExchanges | undefined;
  /** The gateway's limits (what they hold now: metrics, tests). */
  readonly limits: Limits;
  /** The embedded dev identity, when no issuer is configured. */
  readonly devIdentity: DevIdentity | undefined;
  /** This gateway among its replicas: session ownership and the internal hop. */
  readonly replicas: Replicas;
  /** Shutdown has begun: /readyz answers 503 (the data path still serves until #draining). */
  #unready = false;
  /** Past the drain delay: MCP requests and agent tunnels are refused, the port closes. */
  #draining = false;
  /** Why this gateway must stop at once (another process took its instance id), once it must. */
  #fatal: Error | undefined;
  readonly #fatalListeners: Array<(err: Error) => void> = [];
  /** Ends the drain delay early (a second stop). */
  #endDelay: (() => void) | undefined;
  #stopped: Promise<void> | undefined;

  private constructor(
    readonly config: GatewayConfig,
    options: GatewayOptions,
    log: Logger,
    recording: Awaited<ReturnType<typeof startRecording>>,
    identity: Awaited<ReturnType<typeof startIdentity>>,
    localApiKey: string,
    tokenKeys: TokenKeys,
  ) {
    this.#log = log;
    // The membership is the peer directory once the hop has its secret; without one (a lone replica: startRecording
    // refused one among others), other replicas' sessions are unknown here.
    const peers = options.peers ?? (config.cluster.secrets.length === 0 ? undefined : recording.cluster?.membership);
    this.replicas = replicasOf(config, tokenKeys, recording.recorder, peers, log);
    this.devIdentity = identity.dev;
    this.#recording = recording;
    recording.cluster?.membership.onTaken((err) => this.#failClosed(err));
    recording.recorder?.onIdTaken((err) => this.#failClosed(err));
    const { recorder, store } = recording;
    this.#liveExchanges = recorder && store ? new LiveExchanges({ recorder, store, live: this.#live, bus: recording.cluster?.bus }) : undefined;
    this.#keepAlive = new KeepAlive(config.http.keepAliveMs);
    this.spares = new StdioSparePools(config.connections.values(), log);
    this.limits = new Limits({ config: config.limits, log, onRefused: (limit) => this.#metrics.limitRefused(limit) });
    const { access, mayOpen } = connectionAccess(config);
    const verifier = new TokenVerifier({ issuers: identity.issuers, clockSkewMs: config.identity.clockSkewMs });
    const publicUrls = new PublicUrls(config.http.publicUrl, () => ({ host: config.listen.host, port: this.port }));
    this.#features = new Features(featureModules, {
      ...recording,
      config,
      timings: options,
      log,
      replicas: this.replicas,
      live: this.#live,
      limits: this.limits,
      verifier,
      publicUrls,
      devIdentity: identity.dev,
      access,
      mayOpen,
      registry: () => this.sessions,
      url: () => (this.#server.listening ? this.url : undefined),
    });
    warnUnscrubbable(config, log);
    const agentsFeature = this.#features.get(agentsModule);
    const hub = agentsFeature?.hub;
    this.modernPool = modernPool(config, () => this.sessions, log);
    this.sharedUpstreams = new SharedUpstreams({
      idleMs: config.sessions.modernIdleTimeoutMs,
      maxPerKey: config.sessions.modernPoolSize,
      log: log.child({ part: 'pooled-upstreams' }),
    });
    const audit = this.#features.get(auditModule);
    const virtualServers = this.#features.get(virtualServersModule);
    const virtualNames = [...config.connections.values()].filter((c) => c.upstream.kind === 'virtual').map((c) => c.name);
    this.#metrics = new GatewayMetrics({
      sessions: () => this.sessions.all(),
      ...(hub ? { agents: () => hub.status() } : {}),
      ...(virtualServers ? { virtualMembersDown: () => virtualNames.map((name): [string, number] => [name, virtualServers.health.downCount(name)]) } : {}),
      ...(audit ? { audit: () => audit.status() } : {}),
      version,
    });
    this.sessions = new SessionRegistry({
      ...registrySettings(config),
      createUpstream: withVirtualServers(
        upstreams(config, this.#agents, agentsFeature?.router, this.spares, this.sharedUpstreams, this.limits),
        virtualServers?.upstream,
      ),
      stagesFor: (c) => this.#features.stagesFor(c),
      observers: [
        ...(options.observers ?? []),
        this.#metrics,
        this.#live,
        ...(recording.cluster?.bus.live ? [new LiveRelay(recording.cluster.bus, this.#live)] : []),
        new RequestLimitsObserver(this.limits),
        this.modernPool,
      ],
      admission: this.limits,
      newId: () => this.replicas.sessionIds.mint(),
      log,
      ...(recording.recorder ? { recorder: recording.recorder } : {}),
      ...this.#features.contributions('sessions'),
    });
    // What to alert on when a part the gateway depends on is down: the store, the replicas, virtual servers' members.
    registerHealthMetrics(this.#metrics.registry, healthSources(config, recording, this.#features.get(virtualServersModule)?.health));
    this.#server = createHttpServer({
      registry: this.sessions,
      ...edges(config, {
        registry: this.sessions,
        keepAlive: this.#keepAlive,
        limits: this.limits,
        log,
        pool: this.modernPool,
        pins: this.#features.get(pinsModule)?.pins,
        replicas: this.replicas,
        tokenKeys,
      }),
      replicas: this.replicas,
      ...serverSettings(config, publicUrls, this.limits),
      log,
      // Why a load balancer should send nothing new here (/readyz), or undefined when it may.
      ready: () =>
        this.#fatal !== undefined
          ? 'instance id taken by another gateway'
          : this.#unready
            ? 'draining'
            : this.#recording.recorder?.accepting === false
              ? 'recording store unavailable'
              : undefined,
      closing: () => this.#draining,
      authenticator: options.authenticator ?? bearerAuthenticator(verifier, publicUrls, this.limits),
      access: (name) => access(name)!,
      metrics: this.#metrics,
      issuers: identity.issuers,
      api: recordingsApi(config, recording, localApiKey),
      apis: this.#features.apis,
      ...this.#features.contributions('http'),
    });
  }

  /** Builds the gateway and listens; rejects with a clear message when the address is taken or the store cannot open. */
  static async start(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const log = options.log ?? createLogger(config.log.level, process.stderr, configCredentials(config), config.log.format);
    const identity = await startIdentity(config, options, log);
    const localApiKey = loadOrCreateLocalApiKey(config.dataDir);
    const recording = await startRecording(config, options, log);
    let gateway: Gateway;
    try {
      gateway = new Gateway(config, options, log, recording, identity, localApiKey, await loadTokenKeys(config, recording.store, log));
    } catch (err) {
      await recording.cluster?.leave().catch(() => {});
      await recording.recorder?.close();
      await recording.store?.close();
      throw err;
    }
    try {
      await gateway.#features.start();
      await listen(gateway.#server, config.listen.host, config.listen.port);
      await recording.cluster?.listening(gateway.url);
    } catch (err) {
      await gateway.spares.close();
      await recording.cluster?.leave().catch(() => {});
      await recording.recorder?.close();
      await recording.store?.close();
      throw err;
    }
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
    if (!this.#features.get(consoleModule)) return undefined;
    const base = this.config.http.publicUrl ?? this.url;
    return this.devIdentity ? this.devIdentity.consoleLink(base) : `${base}/`;
  }

  /** The replicas sharing the store (membership, change notifications), when recording is on. */
  get cluster(): Cluster | undefined {
    return this.#recording.cluster;
  }

  /** The recorder, when recording is on. */
  get recorder(): Recorder | undefined {
    return this.#recording.recorder;
  }

  /**
   * Told once when this gateway cannot go on (another process took its instance id: the membership logged why and
   * the fix). It has stopped serving by then; the process should exit as on a failed start (the CLI does).
   */
  onFatal(listener: (err: Error) => void): void {
    this.#fatalListeners.push(listener);
    const fatal = this.#fatal;
    if (fatal !== undefined) queueMicrotask(() => listener(fatal));
  }

  /**
   * Fail closed: not ready, no more MCP requests or tunnels, and nothing more recorded under the instance id (the
   * recorder's sweep would otherwise seal the live sessions of the process that holds it now), before anyone is told to exit.
   */
  #failClosed(err: Error): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = err;
    this.#unready = true;
    this.#draining = true;
    this.#recording.recorder?.closeForWrites(err);
    for (const l of this.#fatalListeners) l(err);
  }

  /**
   * Graceful shutdown: close the port and refuse new work, let requests in flight finish (up to shutdown.drainTimeout),
   * then end every session (stdio servers are terminated) and close the port. `drainDelay` (what a signal gets):
   * first answer /readyz 503 while serving on for shutdown.drainDelay, so a load balancer moves traffic away before
   * the port closes; a new legacy session asked for meanwhile opens on a serving peer, or is refused 503 (http-server.ts).
   * A second call ends that delay at once.
   */
  stop(options: { drainDelay?: boolean } = {}): Promise<void> {
    this.#endDelay?.();
    return (this.#stopped ??= this.#stop(options.drainDelay === true ? this.config.shutdown.drainDelayMs : 0));
  }

  async #stop(delayMs: number): Promise<void> {
    this.#unready = true;
    // Other replicas see it draining at once, as the load balancer does on /readyz.
    const drained = this.#recording.cluster?.drain().catch(() => {});
    if (delayMs > 0) {
      this.#log.info({ sessions: this.sessions.size, delayMs }, 'not ready: serving on while the load balancer stops sending');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.#endDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#endDelay = undefined;
    }
    this.#draining = true;
    this.#log.info({ sessions: this.sessions.size }, 'draining');
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    // Requests forwarded to the replicas owning their sessions are in flight here too, though no session here has them.
    const deadline = Date.now() + this.config.shutdown.drainTimeoutMs;
    await Promise.all([this.sessions.settled(deadline), this.replicas.settled(deadline)]);
    await this.#features.stop();
    this.#live.close();
    this.#liveExchanges?.close();
    this.modernPool.stop();
    // Streams through the hop end with the local ones.
    this.replicas.close();
    await Promise.all([this.sessions.closeAll('gateway shutting down'), this.spares.close()]);
    await this.#features.closed();
    await this.sharedUpstreams.close();
    this.limits.close();
    // Every session's seal is written before the store closes; then the replica leaves the membership.
    await drained;
    await this.#recording.recorder?.close();
    await this.#features.afterRecording();
    await this.#recording.cluster?.leave().catch(() => {});
    await this.#recording.store?.close();
    this.#keepAlive.stop();
    await this.#agents.destroy();
    this.#server.closeAllConnections();
    await closed;
    this.#log.info('gateway stopped');
  }
}
