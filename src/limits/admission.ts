import type { LimitExceededError } from './limit-error.js';

/** A place taken by a session; released once, when the session has ended. */
export interface SessionLease {
  release(): void;
}

/** A refusal, and whether it is the first of its burst: the one to record as a refused session. */
export interface Refusal {
  refused: LimitExceededError;
  record: boolean;
}

export type Admission = { lease: SessionLease } | Refusal;

/**
 * A session count at its limit, and which live sessions count towards it: the principal's (`principal-stdio`: those
 * on stdio connections), the connection's, or all of the gateway's.
 */
export interface FullSessionCap {
  scope: 'principal' | 'principal-stdio' | 'connection' | 'global';
  limit: string;
  value: number;
  what: string;
}

/** How long a client refused for a count (sessions, server processes) is told to wait: a hint, not a promise. */
export const sessionRetrySeconds = 10;

/** An admission whose place is given back by `free`, at most once however often the lease is released. */
export function admitted(free: () => void): { lease: SessionLease } {
  let held = true;
  return {
    lease: {
      release: () => {
        if (!held) return;
        held = false;
        free();
      },
    },
  };
}
