/** Calls held for review as the store holds them (store/reviews.ts). Times are µs since the epoch. */

/**
 * Where a held call's review is: waiting for approvers; approved (the holding gateway may forward the call once);
 * released (it did: an approval is single-use); rejected; expired (no decision in time); interrupted (the holding
 * gateway stopped or restarted, so the call failed); cancelled (the client cancelled or left).
 */
export type ReviewStatus = 'pending' | 'approved' | 'released' | 'rejected' | 'expired' | 'interrupted' | 'cancelled';

/** One approver's approval of a review. */
export interface ReviewApproval {
  subject: string;
  issuer: string;
  email: string | null;
  atUs: number;
  note: string | null;
}

/** A call held by a guardrail rule until enough approvers approve exactly it. */
export interface ReviewRow {
  id: string;
  status: ReviewStatus;
  /** The rule that held it. */
  rule: string;
  connection: string;
  sessionId: string;
  /** The gateway instance holding the call: only it can forward it. */
  instanceId: string;
  method: string;
  /** The tool, prompt or resource the call is about, when it is about one. */
  target: string | null;
  /** The virtual server the call came through (src/virtual); null for a call made on the connection itself. */
  virtualServer: string | null;
  /** The tool's or prompt's name on that virtual server (prefixed or renamed); null when not through one, or for a resource. */
  virtualTarget: string | null;
  /** The request's params as JSON text, as recorded (client-argument masking applied when configured). */
  params: string;
  /** SHA-256 (hex) of the canonical method and params: what an approval is bound to. */
  digest: string;
  requesterSubject: string;
  requesterIssuer: string;
  requesterEmail: string | null;
  /** Groups any of whose members may approve or reject. */
  approverGroups: string[];
  /** Approvals (by distinct approvers) needed. */
  minApprovals: number;
  approvals: ReviewApproval[];
  createdAtUs: number;
  /** When the review times out unanswered. */
  expiresAtUs: number;
  /** When it left `pending` (approved, rejected, expired, …). */
  decidedAtUs: number | null;
  /** Who rejected it, or gave the last approval. */
  deciderSubject: string | null;
  deciderIssuer: string | null;
  deciderEmail: string | null;
  /** The rejection's reason, or why the review ended without a decision. */
  decisionNote: string | null;
}

export interface ReviewQuery {
  status?: ReviewStatus;
  connection?: string;
  instanceId?: string;
  /** Newest first. */
  limit: number;
}

/** What a review update writes; `approvals` replaces the list. */
export type ReviewUpdate = Pick<ReviewRow, 'status'> &
  Partial<Pick<ReviewRow, 'approvals' | 'decidedAtUs' | 'deciderSubject' | 'deciderIssuer' | 'deciderEmail' | 'decisionNote'>>;
