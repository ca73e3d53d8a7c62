import { z } from 'zod';
import { duration } from '../core/config-fields.js';

/**
 * `cluster`: how the replicas of one gateway sharing a PostgreSQL store find each other (membership.ts) and hear of
 * each other's decisions (change-bus.ts). A lone gateway (or one on SQLite) needs none of it.
 */
export function clusterSchema() {
  return z
    .strictObject({
      /**
       * The base URL other replicas reach this one at for the internal hop (e.g. http://10.0.0.5:8080); default: the
       * listen address (an unspecified host, 0.0.0.0 or ::, is replaced by this machine's first non-loopback address).
       */
      internalUrl: z
        .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL such as http://10.0.0.5:8080' })
        .transform((u) => u.replace(/\/+$/, ''))
        .optional(),
      /**
       * A replica that has not heart-beaten for this long is gone: the others stop routing to it, seal its open
       * recordings as cut off and mark its held reviews interrupted. Replicas heart-beat every third of it.
       */
      goneAfter: duration('15s').refine((ms) => ms >= 1000 && ms <= 600_000, 'expected from 1s to 10m'),
      /**
       * How often held reviews and access grants are read again from the store, as a safety net under the change
       * notifications (PostgreSQL LISTEN/NOTIFY) that carry them between replicas at once. On SQLite, which has no
       * notifications, they are read every second whatever this says.
       */
      reconcile: duration('10s').refine((ms) => ms >= 100 && ms <= 3_600_000, 'expected from 100ms to 1h'),
    })
    .prefault({})
    .transform((c) => ({
      ...(c.internalUrl === undefined ? {} : { internalUrl: c.internalUrl }),
      goneAfterMs: c.goneAfter,
      heartbeatMs: Math.max(250, Math.floor(c.goneAfter / 3)),
      reconcileMs: c.reconcile,
    }));
}

export type ClusterConfig = z.output<ReturnType<typeof clusterSchema>>;
