import type { Logger } from 'pino';
import { SessionsApi } from '../api/sessions.js';
import { type Authenticator, BearerAuthenticator } from '../edge/authenticate.js';
import { GatedAuthenticator } from '../edge/gated-authenticator.js';
import type { PublicUrls } from '../edge/public-urls.js';
import type { HttpServerOptions } from '../http/http-server.js';
import type { TokenVerifier } from '../identity/verifier.js';
import type { Limits } from '../limits/limits.js';
import type { GatewayConfig } from '../config/schema.js';
import { DevIdentity } from '../identity/dev-identity.js';
import { RemoteIssuer, type TrustedIssuer } from '../identity/issuers.js';
import { type Cluster, joinCluster } from '../cluster/cluster.js';
import type { Keyring } from '../encryption/keyring.js';
import { startEncryption } from '../encryption/start-checks.js';
import { loadInstanceId } from '../recording/instance.js';
import { nowUs } from '../recording/time.js';
import { keyIdOfPem, loadSigningKey } from '../recording/keys.js';
import { Recorder } from '../recording/recorder.js';
import { type TrustedKeys, trustedKeys } from '../recording/verify.js';
import { readableStore } from '../encryption/readable-store.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { unscrubbableCredentials } from '../upstream/injected-credentials.js';
import type { FeatureTimings } from './feature.js';
import { requireSecretWithReplicas } from './replicas.js';

/** What every feature stands on, built before them: who is calling (identity) and where it is written (recording). */
/** Who the gateway trusts to say who is calling: the configured issuers, or (with none) the embedded dev identity. */
export async function startIdentity(config: GatewayConfig, timings: FeatureTimings, log: Logger): Promise<{ issuers: TrustedIssuer[]; dev?: DevIdentity }> {
  if (config.identity.issuers.length === 0) {
    const dev = await DevIdentity.load(config.dataDir, config.identity.dev);
    log.warn(
      { users: dev.users },
      'dev identity is ON (no identity.issuers configured): the gateway signs its own tokens for the users in identity.dev.users; get one with `portcullis login --dev <user>`. Configure an OIDC issuer for real use.',
    );
    return { issuers: [dev.issuer], dev };
  }
  const issuers = config.identity.issuers.map((c) => new RemoteIssuer(c, log, timings.issuerTimings));
  // Discover now, so that a misconfigured issuer shows in the log at start rather than at the first request.
  for (const issuer of issuers) void issuer.metadata();
  return { issuers };
}

/**
 * Opens the store and starts the recorder, unless recording is off. The recorder and the membership write the store
 * itself; the `store` returned, which the features, the API and the console read, opens encrypted payloads with the
 * configured keyring (encryption/readable-store.ts).
 */
export async function startRecording(
  config: GatewayConfig,
  timings: FeatureTimings,
  log: Logger,
): Promise<{ store?: Store; recorder?: Recorder; cluster?: Cluster; keyring?: Keyring }> {
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
  const storeUrl = config.store.reveal();
  const store = await openStore(storeUrl, { sync: config.recording.sqliteSync, writeTimeoutMs: config.recording.writeTimeoutMs });
  let cluster: Cluster | undefined;
  try {
    // First the membership: a duplicate instance id is refused before the recorder seals "its" open sessions.
    cluster = await joinCluster({
      store,
      storeUrl,
      instanceId,
      log,
      ...(config.cluster.internalUrl === undefined ? {} : { internalUrl: config.cluster.internalUrl }),
      listenHost: config.listen.host,
      goneAfterMs: config.cluster.goneAfterMs,
      heartbeatMs: config.cluster.heartbeatMs,
      reconcileMs: config.cluster.reconcileMs,
      ...(config.cluster.secrets.length === 0 ? {} : { secret: config.cluster.secrets.map((s) => s.reveal()) }),
      ...(timings.reconnectMs === undefined ? {} : { reconnectMs: timings.reconnectMs }),
    });
    // Replicas that could not reach each other's sessions are refused before anything is recorded.
    requireSecretWithReplicas(config, cluster.membership, log);
    // Then the keys, before anything is recorded: a KEK the store knows as another key, or replicas that could not
    // read each other's recordings, refuse the start.
    const keyring = await startEncryption({
      encryption: config.recording.encryption,
      store,
      member: cluster.membership,
      goneAfterMs: config.cluster.goneAfterMs,
      log,
      nowUs: nowUs(),
    });
    const recorder = await Recorder.start({
      store,
      instanceId,
      boot: cluster.membership.boot,
      key,
      mode,
      log,
      retentionMs: config.recording.retentionMs,
      retentionAction: config.recording.retentionAction,
      ...(keyring === undefined ? {} : { keyring }),
      trustedKeys: config.recording.trustedKeys.map((pem) => ({ keyId: keyIdOfPem(pem), publicKeyPem: pem })),
      keepUnshippedFor: config.audit.sinks.map((s) => s.name),
      writeTimeoutMs: config.recording.writeTimeoutMs,
      // A replica silent past cluster.goneAfter is gone: its open sessions are sealed as cut off (see onGone below).
      staleAfterMs: config.cluster.goneAfterMs,
      heartbeatMs: config.cluster.heartbeatMs,
      recoversOthers: () => cluster!.membership.recovers(),
      alive: (id) => cluster!.membership.aliveNow(id),
      ...timings.recorderTimings,
    });
    // A heartbeat later, not at once: after a store outage every replica looks silent until it beats again, and the
    // sweep reads the heartbeats afresh, so only replicas still silent then have their sessions sealed.
    cluster.membership.onGone(() => setTimeout(() => void recorder.sweep().catch(() => {}), config.cluster.heartbeatMs).unref());
    log.info({ store: store.location, instance: instanceId, keyId: key.keyId, mode }, 'recording');
    return { store: readableStore(store, keyring), recorder, cluster, ...(keyring === undefined ? {} : { keyring }) };
  } catch (err) {
    await cluster?.leave().catch(() => {});
    await store.close();
    throw err;
  }
}

/** The keys this gateway's verification trusts: its own and the configured ones (never merely the store's). */
async function verificationKeys(config: GatewayConfig, recorder: Recorder | undefined): Promise<TrustedKeys> {
  const own = recorder ? [{ keyId: recorder.key.keyId, publicKeyPem: recorder.key.publicKeyPem }] : [];
  return trustedKeys([...own, ...config.recording.trustedKeys.map((pem) => ({ keyId: keyIdOfPem(pem), publicKeyPem: pem }))]);
}

/** Injected credentials too short to scrub from what servers send back: said once, at start. */
export function warnUnscrubbable(config: GatewayConfig, log: Logger): void {
  const unscrubbable = [...config.connections.values()].flatMap((c) => unscrubbableCredentials(c.name, c.upstream));
  if (unscrubbable.length > 0) {
    log.warn({ credentials: unscrubbable }, 'these injected values are too short to be scrubbed from what the servers send back (under 8 characters)');
  }
}

/** Token authentication of MCP requests, behind the limit on unauthenticated attempts. */
export function bearerAuthenticator(verifier: TokenVerifier, publicUrls: PublicUrls, limits: Limits): Authenticator {
  return new GatedAuthenticator(new BearerAuthenticator(verifier, publicUrls), limits.unauthenticated, (token) => verifier.knows(token));
}

/** /api/sessions (absent when recording is off) and the machine credentials of /api and /metrics. */
export function recordingsApi(config: GatewayConfig, recording: { store?: Store; recorder?: Recorder }, localApiKey: string): HttpServerOptions['api'] {
  return {
    ...(recording.store
      ? { sessions: new SessionsApi(recording.store, () => verificationKeys(config, recording.recorder), config.sessions.viewIdleGapMs) }
      : {}),
    keys: { localKey: localApiKey, ...(config.api.token ? { token: config.api.token } : {}) },
  };
}
