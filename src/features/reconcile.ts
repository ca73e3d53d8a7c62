import type { Cluster } from '../cluster/cluster.js';

/**
 * Runs `reread`, a feature's safety-net re-read of the store (what a missed notification would have said), at each
 * of the cluster's reconciliations, so that one timer drives them all. A test's own pace (`everyMs`, FeatureTimings)
 * runs it on a timer of its own instead. Returns what stops it, for the feature's stop.
 *
 * The cluster is absent only when recording is off, and so then are the features that keep state in the store:
 * nothing is re-read then.
 */
export function rereadAtReconcile(cluster: Cluster | undefined, everyMs: number | undefined, reread: () => void): () => void {
  if (everyMs === undefined) return cluster?.onReconcile(reread) ?? (() => {});
  const timer = setInterval(reread, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
