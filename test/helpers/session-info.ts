import type { SessionInfo } from '../../src/pipeline/stage.js';
import type { Identity } from '../../src/core/identity.js';

/** A session as stages see it, for testing a stage on its own: nothing is ever cancelled unless `cancel` is used. */
export function sessionInfo(id: string, connection: string, identity: Identity): SessionInfo & { cancel(reason: string): void } {
  const controller = new AbortController();
  return {
    id,
    connection,
    identity,
    cancellation: () => controller.signal,
    requestUpstream: () => Promise.reject(new Error('no server behind this test session')),
    refusePending: () => {},
    cancel: (reason) => controller.abort(new Error(reason)),
  };
}
