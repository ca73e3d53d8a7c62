import { z } from 'zod';
import { referenceOnly } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';
import { minTokenSecretLength } from './token-keys.js';

/** A secret of the cluster, from a reference, long enough to be a key. */
function clusterSecret(sources: SecretSources, what: string) {
  return referenceOnly(sources, what).refine(
    (s) => s.reveal().length >= minTokenSecretLength,
    `expected at least ${minTokenSecretLength} characters (e.g. the output of \`openssl rand -base64 32\`)`,
  );
}

/** `cluster:`: what replicas of one gateway share (docs/cluster-hop.md). */
export function clusterSchema(sources: SecretSources) {
  return z
    .strictObject({
      /** Signs the internal hop between replicas; the same on every replica. Unset: this gateway refuses every hop. */
      secret: clusterSecret(sources, 'cluster.secret').optional(),
      /**
       * The keys of the gateway's sealed tokens (session ids, MRTR requestStates): the first seals, every one opens
       * (rotation). Unset: a key generated once and kept in the store, which every replica on that store shares.
       */
      tokenKeys: z.array(clusterSecret(sources, 'a cluster.tokenKeys entry')).default([]),
    })
    .prefault({});
}
