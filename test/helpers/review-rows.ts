import type { ReviewRow } from '../../src/store/review-types.js';

/** A review held (pending) by gateway instance `instanceId`, as its Reviews would store it, timing out in an hour. */
export function heldReviewRow(id: string, instanceId: string): ReviewRow {
  const now = Date.now() * 1000;
  return {
    id,
    status: 'pending',
    rule: 'writes',
    connection: 'files',
    sessionId: `s-${id}`,
    instanceId,
    method: 'tools/call',
    target: 'write_file',
    virtualServer: null,
    virtualTarget: null,
    params: '{"name":"write_file","arguments":{}}',
    digest: 'd'.repeat(64),
    requesterSubject: 'alice',
    requesterIssuer: 'https://idp',
    requesterEmail: null,
    approverGroups: ['leads'],
    minApprovals: 1,
    approvals: [],
    createdAtUs: now,
    expiresAtUs: now + 3_600_000_000,
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    deciderEmail: null,
    decisionNote: null,
  };
}
