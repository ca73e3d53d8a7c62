/** Just-in-time access requests as the store holds them (store/access.ts). Times are µs since the epoch. */

/** Where a just-in-time access request is: waiting, decided, or (for a grant) run out or taken back. */
export type AccessRequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';

/** A just-in-time access request and, once decided, its decision; an approved one is a grant until `expiresAtUs`. */
export interface AccessRequestRow {
  id: string;
  connection: string;
  requesterSubject: string;
  requesterIssuer: string;
  requesterEmail: string | null;
  reason: string;
  /** How long the access is asked for. */
  durationMs: number;
  status: AccessRequestStatus;
  createdAtUs: number;
  decidedAtUs: number | null;
  deciderSubject: string | null;
  deciderIssuer: string | null;
  decisionNote: string | null;
  /** Pending: when the request lapses unanswered; approved: when the grant ends. */
  expiresAtUs: number;
}

export interface AccessRequestQuery {
  status?: AccessRequestStatus;
  connection?: string;
  /** Newest first. */
  limit: number;
}
