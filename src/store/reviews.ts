import type { DatabasePort } from './port.js';
import { type Entry, insertSql, json, newestFirstSql, num, numOrNull, type Row, setSql, strOrNull } from './rows.js';
import { sql } from './sql.js';
import type { ReviewApproval, ReviewQuery, ReviewRow, ReviewStatus, ReviewUpdate } from './review-types.js';

/** Calls held for review and their approvals (reviews/). */
export interface ReviewStore {
  insertReview(row: ReviewRow): Promise<void>;
  getReview(id: string): Promise<ReviewRow | undefined>;
  listReviews(query: ReviewQuery): Promise<ReviewRow[]>;
  /**
   * Compare-and-set: applies `to` only while the review is still in status `from` with `approvalCount` approvals
   * (two approvers approving at once, or a decision racing the timeout, cannot both win); false when it was not.
   */
  updateReview(id: string, from: { status: ReviewStatus; approvalCount: number }, to: ReviewUpdate): Promise<boolean>;
}

export function reviewStore(db: DatabasePort): ReviewStore {
  return {
    async insertReview(row) {
      await db.run(insertSql('reviews', reviewToDb(row)));
    },
    async getReview(id) {
      const [row] = await db.query(sql`SELECT * FROM reviews WHERE id = ${id}`);
      return row === undefined ? undefined : reviewFromDb(row);
    },
    async listReviews(q) {
      return (await db.query(newestFirstSql('reviews', { status: q.status, connection: q.connection, instance_id: q.instanceId }, q.limit))).map(reviewFromDb);
    },
    async updateReview(id, from, to) {
      const set = setSql([
        ['status', to.status],
        ...(to.approvals === undefined ? [] : approvalEntries(to.approvals)),
        ['decided_at_us', to.decidedAtUs],
        ['decider_subject', to.deciderSubject],
        ['decider_issuer', to.deciderIssuer],
        ['decider_email', to.deciderEmail],
        ['decision_note', to.decisionNote],
      ]);
      const changed = await db.run(sql`UPDATE reviews SET ${set} WHERE id = ${id} AND status = ${from.status} AND approval_count = ${from.approvalCount}`);
      return changed === 1;
    },
  };
}

function reviewFromDb(r: Row): ReviewRow {
  return {
    id: String(r.id),
    status: String(r.status) as ReviewStatus,
    rule: String(r.rule),
    connection: String(r.connection),
    sessionId: String(r.session_id),
    instanceId: String(r.instance_id),
    method: String(r.method),
    target: strOrNull(r.target),
    virtualServer: strOrNull(r.virtual_server),
    virtualTarget: strOrNull(r.virtual_target),
    params: String(r.params),
    digest: String(r.digest),
    requesterSubject: String(r.requester_subject),
    requesterIssuer: String(r.requester_issuer),
    requesterEmail: strOrNull(r.requester_email),
    approverGroups: (json(r.approver_groups) as string[] | null) ?? [],
    minApprovals: num(r.min_approvals),
    approvals: (json(r.approvals) as ReviewApproval[] | null) ?? [],
    createdAtUs: num(r.created_at_us),
    expiresAtUs: num(r.expires_at_us),
    decidedAtUs: numOrNull(r.decided_at_us),
    deciderSubject: strOrNull(r.decider_subject),
    deciderIssuer: strOrNull(r.decider_issuer),
    deciderEmail: strOrNull(r.decider_email),
    decisionNote: strOrNull(r.decision_note),
  };
}

/** The approvals columns: the list, and its length for the compare-and-set of `updateReview`. */
function approvalEntries(approvals: ReviewApproval[]): Entry[] {
  return [
    ['approvals', JSON.stringify(approvals)],
    ['approval_count', approvals.length],
  ];
}

function reviewToDb(r: ReviewRow): Entry[] {
  return [
    ['id', r.id],
    ['status', r.status],
    ['rule', r.rule],
    ['connection', r.connection],
    ['session_id', r.sessionId],
    ['instance_id', r.instanceId],
    ['method', r.method],
    ['target', r.target],
    ['virtual_server', r.virtualServer],
    ['virtual_target', r.virtualTarget],
    ['params', r.params],
    ['digest', r.digest],
    ['requester_subject', r.requesterSubject],
    ['requester_issuer', r.requesterIssuer],
    ['requester_email', r.requesterEmail],
    ['approver_groups', JSON.stringify(r.approverGroups)],
    ['min_approvals', r.minApprovals],
    ...approvalEntries(r.approvals),
    ['created_at_us', r.createdAtUs],
    ['expires_at_us', r.expiresAtUs],
    ['decided_at_us', r.decidedAtUs],
    ['decider_subject', r.deciderSubject],
    ['decider_issuer', r.deciderIssuer],
    ['decider_email', r.deciderEmail],
    ['decision_note', r.decisionNote],
  ];
}
