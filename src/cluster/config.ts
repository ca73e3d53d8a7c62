import { z } from 'zod';
import { duration, referenceOnly } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';
import { minTokenSecretLength } from './token-keys.js';

/** A secret of the cluster, from a reference, long enough to be a key. */
function clusterSecret(sources: SecretSources, what: string) {
  return referenceOnly(sources, what).refine(
    (s) => s.reveal().length >= minTokenSecretLength,
    `expected at least ${minTokenSecretLength} characters (e.g. the output of \`openssl rand -base64 32\`)`,
  );
}

/** A list's refinement: each secret once (the message says what the list's order means). */
function listedOnce(order: string) {
  return (secrets: Array<{ reveal(): string }>, ctx: z.RefinementCtx) => {
    secrets.forEach((s, i) => {
      const first = secrets.findIndex((t) => t.reveal() === s.reveal());
      if (first < i) ctx.addIssue({ code: 'custom', path: [i], message: `the same secret as entry ${first}: list each secret once (${order})` });
    });
  };
}

/**
 * cluster.secret: one reference, or a list of them (rotation: the first signs, every one verifies). Either way the
 * output is the list, empty when unset. A list must name at least one secret, each once.
 */
function clusterSecrets(sources: SecretSources) {
  const one = clusterSecret(sources, 'cluster.secret').transform((s) => [s]);
  const list = z
    .array(clusterSecret(sources, 'a cluster.secret entry'))
    .min(1, 'an empty list: give one secret (or, during a rotation, the new and the old), or remove cluster.secret')
    .superRefine(listedOnce('the first signs, every one verifies'));
  return z
    .union([z.string(), z.array(z.unknown())], { error: 'expected a ${file:…} or ${env:…} reference, or a list of them (the first signs, every one verifies)' })
    .transform((value, ctx) => {
      const parsed = (typeof value === 'string' ? one : list).safeParse(value);
      if (parsed.success) return parsed.data;
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue });
      return z.NEVER;
    });
}

/**
 * `cluster:`: what the replicas of one gateway sharing a PostgreSQL store share: how they find each other
 * (membership.ts), hear of each other's decisions (change-bus.ts) and reach each other (the hop, docs/cluster-hop.md).
 * A lone gateway (or one on SQLite) needs none of it.
 */
export function clusterSchema(sources: SecretSources) {
  return z
    .strictObject({
      /**
       * Signs the internal hop between replicas and the change notifications: one secret, the same on every replica,
       * or a list of them, the first of which signs and every one of which verifies (rotation, as tokenKeys). Unset:
       * this gateway refuses every hop.
       */
      secret: clusterSecrets(sources).optional(),
      /**
       * The keys of the gateway's sealed tokens (session ids, MRTR requestStates): the first seals, every one opens
       * (rotation). Unset: a key generated once and kept in the store, which every replica on that store shares.
       */
      tokenKeys: z.array(clusterSecret(sources, 'a cluster.tokenKeys entry')).superRefine(listedOnce('the first seals, every one opens')).default([]),
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
       * recordings as cut off and mark its held reviews interrupted. Replicas heart-beat every third of it, and their
       * change notification connection must answer a check as often (one that does not is reconnected).
       */
      goneAfter: duration('15s').refine((ms) => ms >= 1000 && ms <= 600_000, 'expected from 1s to 10m'),
      /**
       * How often held reviews, access grants and tool pins are read again from the store, as a safety net under the
       * change notifications (PostgreSQL LISTEN/NOTIFY) that carry them between replicas at once. On SQLite, which has
       * no notifications, they are read every second whatever this says.
       */
      reconcile: duration('10s').refine((ms) => ms >= 100 && ms <= 3_600_000, 'expected from 100ms to 1h'),
      /** How long a hop waits to connect to the replica it forwards to; past it the client gets 504 (the session stands). */
      hopConnectTimeout: duration('5s').refine((ms) => ms >= 100 && ms <= 60_000, 'expected from 100ms to 1m'),
      /**
       * How long a hop waits for the replica it forwards to to take it (it answers 102 at once, before serving): a
       * replica that accepts the connection and then says nothing (stalled, or not a gateway) gets the client a 504
       * rather than a request that hangs. Not a limit on the call itself, which may take as long as it takes.
       */
      hopHeadTimeout: duration('15s').refine((ms) => ms >= 1000 && ms <= 600_000, 'expected from 1s to 10m'),
    })
    .superRefine((c, ctx) => {
      // One secret for two jobs: whoever learns the hop's secret could also forge session ids, and the other way round.
      const hop = new Set((c.secret ?? []).map((s) => s.reveal()));
      c.tokenKeys.forEach((k, i) => {
        if (hop.has(k.reveal()))
          ctx.addIssue({
            code: 'custom',
            path: ['tokenKeys', i],
            message: 'the same secret as in cluster.secret: give the sealed tokens a key of their own (e.g. `openssl rand -base64 32`)',
          });
      });
    })
    .prefault({})
    .transform((c) => ({
      /** cluster.secret as a list, the signing one first; empty when unset. */
      secrets: c.secret ?? [],
      tokenKeys: c.tokenKeys,
      ...(c.internalUrl === undefined ? {} : { internalUrl: c.internalUrl }),
      goneAfterMs: c.goneAfter,
      heartbeatMs: Math.max(250, Math.floor(c.goneAfter / 3)),
      reconcileMs: c.reconcile,
      hopTimeouts: { connectMs: c.hopConnectTimeout, headMs: c.hopHeadTimeout },
    }));
}

export type ClusterConfig = z.output<ReturnType<typeof clusterSchema>>;

/** cluster.secret's values, the signing one first, or undefined when it is not set. */
export function clusterSecretValues(cluster: ClusterConfig): string[] | undefined {
  return cluster.secrets.length === 0 ? undefined : cluster.secrets.map((s) => s.reveal());
}

/** What the heartbeat check reads of a config that may be only partly parsed (other keys may be invalid). */
interface HeartbeatKeys {
  store?: unknown;
  recording?: { writeTimeoutMs?: unknown };
  cluster?: { goneAfterMs?: unknown; heartbeatMs?: unknown };
}

/**
 * A replica is gone when the others have not seen its heartbeat move for cluster.goneAfter, and it beats every third
 * of it: a beat has goneAfter less a heartbeat to land. On a PostgreSQL store a beat is given recording.writeTimeout,
 * and may first wait about as long for one of the pool's connections (held by writes bounded by the same timeout). A
 * goneAfter that does not allow both has one slow beat take a live replica for gone: its sessions sealed, its held
 * reviews interrupted. (A lone gateway on SQLite has nobody to take it for gone.)
 */
export function checkHeartbeatFits(c: HeartbeatKeys, ctx: z.RefinementCtx): void {
  const store = c.store as { reveal?: () => string } | undefined;
  const writeTimeoutMs = c.recording?.writeTimeoutMs;
  const goneAfterMs = c.cluster?.goneAfterMs;
  const heartbeatMs = c.cluster?.heartbeatMs;
  if (typeof store?.reveal !== 'function' || !/^postgres(ql)?:/.test(store.reveal())) return;
  if (typeof writeTimeoutMs !== 'number' || typeof goneAfterMs !== 'number' || typeof heartbeatMs !== 'number') return;
  const mayTakeMs = 2 * writeTimeoutMs;
  if (goneAfterMs - heartbeatMs >= mayTakeMs) return;
  const leastGoneAfterMs = Math.ceil(Math.max(3 * writeTimeoutMs, mayTakeMs + 250) / 1000) * 1000;
  const mostWriteTimeoutMs = Math.floor((goneAfterMs - heartbeatMs) / 2 / 100) * 100;
  ctx.addIssue({
    code: 'custom',
    path: ['cluster', 'goneAfter'],
    message:
      `cluster.goneAfter (${durationText(goneAfterMs)}) leaves a replica's heartbeat ${durationText(goneAfterMs - heartbeatMs)} to land (replicas beat ` +
      `every third of it), but a heartbeat on the PostgreSQL store may take recording.writeTimeout (${durationText(writeTimeoutMs)}) and as long again ` +
      "waiting for one of the store's connections: one slow beat would have a live replica taken for gone (its sessions sealed, its held reviews " +
      `interrupted). Set cluster.goneAfter to at least ${durationText(leastGoneAfterMs)}` +
      (mostWriteTimeoutMs >= 100 ? `, or recording.writeTimeout to at most ${durationText(mostWriteTimeoutMs)}` : ''),
  });
}

function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
