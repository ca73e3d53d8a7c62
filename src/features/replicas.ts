import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HopAuth } from '../cluster/hop-auth.js';
import type { Membership } from '../cluster/membership.js';
import type { PeerDirectory } from '../cluster/peer-directory.js';
import { Replicas } from '../cluster/replicas.js';
import { SessionIds } from '../cluster/session-ids.js';
import { TokenKeys } from '../cluster/token-keys.js';
import type { GatewayConfig } from '../config/schema.js';
import { nowUs } from '../recording/time.js';
import type { Recorder } from '../recording/recorder.js';
import type { Store } from '../store/store.js';

/**
 * The token keys: cluster.tokenKeys when set; else the store's shared key (made by the first gateway on the store, so
 * replicas on one store agree without any config); else, recording off and no store, a key of this process alone.
 */
export async function loadTokenKeys(config: GatewayConfig, store: Store | undefined, log: Logger): Promise<TokenKeys> {
  if (config.cluster.tokenKeys.length > 0) return new TokenKeys(config.cluster.tokenKeys.map((k) => k.reveal()));
  if (store !== undefined) return new TokenKeys([await store.sharedTokenKey(TokenKeys.generateSecret(), nowUs())]);
  log.info('no store and no cluster.tokenKeys: session ids and MRTR states are sealed under a key of this process alone');
  return new TokenKeys([TokenKeys.generateSecret()]);
}

/** This gateway among its replicas: its instance id (the recorder's, else a random one), its session ids, the hop. */
export function replicasOf(
  config: GatewayConfig,
  tokenKeys: TokenKeys,
  recorder: Recorder | undefined,
  peers: PeerDirectory | undefined,
  log: Logger,
): Replicas {
  const instance = recorder?.instanceId ?? `gw-${randomBytes(6).toString('hex')}`;
  const secret = config.cluster.secret?.reveal();
  return new Replicas(new SessionIds(tokenKeys.ring('session id'), instance), secret === undefined ? undefined : new HopAuth(secret, instance), peers, {
    timeouts: config.cluster.hopTimeouts,
    log: log.child({ part: 'hop' }),
  });
}

/**
 * Replicas sharing the store without cluster.secret cannot reach each other: a legacy session or MRTR round that lands
 * on a replica that does not own it is answered 404 there. Said once at start, when another replica is serving.
 */
export function warnReplicasWithoutSecret(membership: Membership | undefined, log: Logger): void {
  const others = membership?.members().filter((m) => m.id !== membership.instanceId && m.state === 'serving' && membership.addressOf(m.id) !== undefined);
  if (others === undefined || others.length === 0) return;
  log.warn(
    { replicas: others.map((m) => m.id) },
    'other replicas share this store but cluster.secret is not set: their legacy sessions cannot be forwarded, and answer 404 here (docs/cluster-hop.md)',
  );
}
