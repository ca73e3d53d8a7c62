/**
 * cluster.secret as the hop and the change notifications take it: one secret, or a list of them during a rotation.
 * The first signs; every one verifies, so replicas with the lists [s1], [s1, s2], [s2, s1] and [s2] (a rolling
 * rotation, one step at a time) each accept what the others sign.
 */
export type ClusterSecrets = string | readonly string[];

/** The secrets as a list, the signing one first. */
export function secretList(secrets: ClusterSecrets): readonly string[] {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  if (list.length === 0) throw new Error('cluster.secret: at least one secret is needed');
  return list;
}
