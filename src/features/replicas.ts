import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HopAuth } from '../cluster/hop-auth.js';
import type { Membership } from '../cluster/membership.js';
import type { PeerDirectory } from '../cluster/peer-directory.js';
import { clusterSecretValues } from '../cluster/config.js';
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
  const secrets = clusterSecretValues(config.cluster);
  return new Replicas(new SessionIds(tokenKeys.ring('session id'), instance), secrets === undefined ? undefined : new HopAuth(secrets, instance), peers, {
    timeouts: config.cluster.hopTimeouts,
    log: log.child({ part: 'hop' }),
  });
}

/**
 * Replicas on one PostgreSQL store without cluster.secret cannot reach each other: a legacy session or MRTR round that
 * lands on a replica that does not own it is answered 404 there, on every replica but its owner. So a replica that
 * finds another serving when it starts refuses to start (the error names the key and the fix), and one already
 * running says so once, as an error, when another joins. A draining replica is on its way out (a rolling update).
 */
export function requireSecretWithReplicas(config: GatewayConfig, membership: Membership, log: Logger): void {
  if (config.cluster.secrets.length > 0 || config.store.reveal().startsWith('sqlite:')) return;
  const others = () => membership.members().flatMap((m) => (m.id !== membership.instanceId && m.state === 'serving' && membership.isAlive(m.id) ? [m.id] : []));
  const fix = 'set cluster.secret to the same ${file:…} or ${env:…} secret on every replica (docs/cluster-hop.md)';
  const serving = others();
  if (serving.length > 0) {
    throw new Error(
      `cluster.secret is required when replicas share a PostgreSQL store: ${serving.map((id) => `'${id}'`).join(', ')} serving on it now, ` +
        `and without it their legacy sessions answer 404 on every replica but their owner: ${fix}`,
    );
  }
  let said = false;
  membership.onRead(() => {
    const joined = said ? [] : others();
    if (joined.length === 0) return;
    said = true;
    log.error(
      { replicas: joined },
      `cluster.secret is not set, but other replicas now share this PostgreSQL store: their legacy sessions answer 404 here, and this one's there: ${fix}, then restart them`,
    );
  });
}
