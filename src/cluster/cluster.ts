import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { ClusterStore } from '../store/cluster.js';
import { type ChangeBus, LocalChangeBus, PostgresChangeBus } from './change-bus.js';
import { Membership } from './membership.js';

export { DuplicateInstanceError } from './membership.js';

/** What the rest of the gateway uses of the replicas: who they are (membership) and what they changed (bus). */
export interface Cluster {
  readonly membership: Membership;
  readonly bus: ChangeBus;
  /** How often `onReconcile` handlers re-read the store: slowly where changes are notified, every second where not. */
  readonly reconcileMs: number;
  /**
   * Calls `handler` every `reconcileMs`: re-read what a missed notification (one that could not be sent) would have
   * said. The one timer of every such re-read; returns what stops calling it.
   */
  onReconcile(handler: () => void): () => void;
  /** The gateway listens at `url`: its internal address is known and announced. */
  listening(url: string): Promise<void>;
  /** Shutdown began: the replica drains (others see it), then `leave`. */
  drain(): Promise<void>;
  leave(): Promise<void>;
}

export interface ClusterOptions {
  store: ClusterStore;
  /** The store URL: `postgres://…` gets a LISTEN/NOTIFY bus, `sqlite:` a local one. */
  storeUrl: string;
  instanceId: string;
  log: Logger;
  /** cluster.internalUrl; default: the listen address. */
  internalUrl?: string;
  listenHost: string;
  goneAfterMs: number;
  heartbeatMs: number;
  reconcileMs: number;
  /** cluster.secret: change notifications are signed with a key derived from the first, and unsigned ones ignored. */
  secret?: readonly string[];
  /** The first wait before the notification connection reconnects (tests); default 100 ms, doubling to 5 s. */
  reconnectMs?: number;
}

/**
 * Joins the membership (refusing an instance id a live gateway holds) and starts listening for changes. Done before
 * the recorder starts: a duplicate must be refused before it seals anyone's sessions as its own.
 */
export async function joinCluster(o: ClusterOptions): Promise<Cluster> {
  const log = o.log.child({ part: 'cluster' });
  const membership = await Membership.join({
    store: o.store,
    instanceId: o.instanceId,
    ...(o.internalUrl === undefined ? {} : { address: o.internalUrl }),
    goneAfterMs: o.goneAfterMs,
    heartbeatMs: o.heartbeatMs,
    log,
  });
  const bus: ChangeBus = o.storeUrl.startsWith('sqlite:')
    ? new LocalChangeBus()
    : new PostgresChangeBus({
        url: o.storeUrl,
        instanceId: o.instanceId,
        log,
        ...(o.secret === undefined ? {} : { secret: o.secret }),
        ...(o.reconnectMs === undefined ? {} : { reconnectMs: { min: o.reconnectMs, max: Math.max(o.reconnectMs, 5000) } }),
        // The listening connection proves it is alive as often as the replica does.
        checkMs: o.heartbeatMs,
      });
  if (bus instanceof PostgresChangeBus) await bus.ready;
  bus.on('member', () => void membership.refresh());
  bus.onResync(() => void membership.refresh());
  membership.onChange(() => bus.publish('member', o.instanceId));
  let closed = false;
  const reconcileMs = bus.live ? o.reconcileMs : Math.min(o.reconcileMs, 1000);
  const reconcilers = new Set<() => void>();
  const reconciling = setInterval(() => {
    for (const r of reconcilers) r();
  }, reconcileMs);
  reconciling.unref();
  return {
    membership,
    bus,
    reconcileMs,
    onReconcile: (handler) => {
      reconcilers.add(handler);
      return () => void reconcilers.delete(handler);
    },
    listening: (url) => membership.listening(o.internalUrl ?? internalUrlOf(url, o.listenHost)),
    drain: () => membership.drain(),
    async leave() {
      if (closed) return;
      closed = true;
      clearInterval(reconciling);
      await membership.leave();
      await bus.close();
    },
  };
}

/** The listen URL as other machines reach it: an unspecified host (0.0.0.0, ::) becomes this machine's first non-loopback address. */
export function internalUrlOf(listenUrl: string, listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && listenHost !== '') return listenUrl;
  const u = new URL(listenUrl);
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && !a.internal && a.family === 'IPv4')?.address;
  u.hostname = address ?? '127.0.0.1';
  return u.toString().replace(/\/+$/, '');
}
