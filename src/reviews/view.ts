import type { ReviewRow } from '../store/review-types.js';

/** A person as a review shows them. */
interface Person {
  subject: string;
  issuer: string | null;
  email: string | null;
}

/** A review as the API, the CLI and notifications show it: times as ISO strings, params parsed back into JSON. */
export interface ReviewView {
  id: string;
  status: string;
  rule: string;
  connection: string;
  session: string;
  method: string;
  target: string | null;
  /** The virtual server the call came through and the target's name there; null for a call made on the connection. */
  virtual: { server: string; target: string | null } | null;
  params: unknown;
  digest: string;
  requester: Person;
  approvers: string[];
  approvalsNeeded: number;
  approvals: Array<Person & { at: string; note: string | null }>;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decider: Person | null;
  note: string | null;
}

export function reviewView(r: ReviewRow): ReviewView {
  const iso = (us: number) => new Date(us / 1000).toISOString();
  let params: unknown;
  try {
    params = JSON.parse(r.params);
  } catch {
    params = r.params;
  }
  return {
    id: r.id,
    status: r.status,
    rule: r.rule,
    connection: r.connection,
    session: r.sessionId,
    method: r.method,
    target: r.target,
    virtual: r.virtualServer === null ? null : { server: r.virtualServer, target: r.virtualTarget },
    params,
    digest: r.digest,
    requester: { subject: r.requesterSubject, issuer: r.requesterIssuer, email: r.requesterEmail },
    approvers: r.approverGroups,
    approvalsNeeded: r.minApprovals,
    approvals: r.approvals.map((a) => ({ subject: a.subject, issuer: a.issuer, email: a.email, at: iso(a.atUs), note: a.note })),
    createdAt: iso(r.createdAtUs),
    expiresAt: iso(r.expiresAtUs),
    decidedAt: r.decidedAtUs === null ? null : iso(r.decidedAtUs),
    decider: r.deciderSubject === null ? null : { subject: r.deciderSubject, issuer: r.deciderIssuer, email: r.deciderEmail },
    note: r.decisionNote,
  };
}
