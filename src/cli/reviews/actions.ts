import type { ReviewView } from '../../reviews/view.js';
import { callGateway } from '../gateway-api.js';
import type { GatewayCommandOptions } from '../gateway-command.js';
import { gatewayBaseUrl } from '../gateway-url.js';
import { printList } from '../print-list.js';
import { printable } from '../table.js';

/** What `portcullis reviews …` does, over the gateway's API as the signed-in user (the flags are in index.ts). */

type Review = ReviewView;

const person = (p: { subject: string; email: string | null }) => p.email ?? p.subject;
const second = (iso: string | null) => (iso === null ? '-' : iso.replace(/\.\d+Z$/, 'Z'));

/** A call through a virtual server names it and the name used there; '' for a direct call (or a gateway without them). */
const through = (r: Review) => (r.virtual ? ` through '${r.virtual.server}'${r.virtual.target ? ` as ${r.virtual.target}` : ''}` : '');

function summary(r: Review): string {
  const what = `${r.method}${r.target ? ` ${r.target}` : ''} on '${r.connection}'${through(r)} by ${person(r.requester)}`;
  switch (r.status) {
    case 'pending':
      return `review ${r.id}: ${what} waits for ${r.approvalsNeeded - r.approvals.length} approval(s) from ${r.approvers.join(', ')} until ${second(r.expiresAt)}`;
    case 'approved':
    case 'released':
      return `review ${r.id}: ${what} ${r.status} (${r.approvals.map(person).join(', ')})`;
    default:
      return `review ${r.id}: ${what} ${r.status}${r.decider ? ` by ${person(r.decider)}` : ''}${r.note ? `: ${r.note}` : ''}`;
  }
}

export async function reviewsListAction(opts: GatewayCommandOptions & { status?: string; json?: boolean }): Promise<void> {
  const base = await gatewayBaseUrl('reviews', opts.gateway, opts.config);
  const { reviews } = (await callGateway('reviews', base, 'GET', `/api/reviews${opts.status ? `?status=${encodeURIComponent(opts.status)}` : ''}`)) as {
    reviews: Review[];
  };
  printList(reviews, {
    json: opts.json,
    none: 'no reviews',
    header: ['ID', 'STATUS', 'RULE', 'CONNECTION', 'CALLER', 'CALL', 'APPROVALS', 'CREATED', 'EXPIRES'],
    row: (r) => [
      r.id,
      r.status,
      r.rule,
      r.connection,
      person(r.requester),
      `${r.method}${r.target ? ` ${r.target}` : ''}`,
      `${r.approvals.length}/${r.approvalsNeeded}`,
      second(r.createdAt),
      second(r.expiresAt),
    ],
  });
}

export async function reviewsShowAction(id: string, opts: GatewayCommandOptions & { json?: boolean }): Promise<void> {
  const base = await gatewayBaseUrl('reviews', opts.gateway, opts.config);
  const { review: r } = (await callGateway('reviews', base, 'GET', `/api/reviews/${encodeURIComponent(id)}`)) as { review: Review };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const lines = [
    summary(r),
    `  rule:       ${r.rule}`,
    `  caller:     ${person(r.requester)} (${r.requester.subject})`,
    `  call:       ${r.method}${r.target ? ` ${r.target}` : ''} on '${r.connection}'${through(r)}`,
    `  approvers:  ${r.approvers.join(', ')} (${r.approvalsNeeded} needed)`,
    `  created:    ${second(r.createdAt)}, expires ${second(r.expiresAt)}`,
    ...r.approvals.map((a) => `  approved:   by ${person(a)} at ${second(a.at)}${a.note ? `: ${a.note}` : ''}`),
    ...(r.decider && r.status === 'rejected' ? [`  rejected:   by ${person(r.decider)} at ${second(r.decidedAt)}: ${r.note ?? ''}`] : []),
    '  params:',
    ...JSON.stringify(r.params, null, 2)
      .split('\n')
      .map((l) => `    ${l}`),
  ];
  process.stdout.write(`${printable(lines.join('\n'))}\n`);
}

export async function reviewsDecisionAction(
  action: 'approve' | 'reject',
  id: string,
  opts: GatewayCommandOptions & { note?: string; reason?: string },
): Promise<void> {
  const base = await gatewayBaseUrl('reviews', opts.gateway, opts.config);
  const body = action === 'approve' ? (opts.note ? { note: opts.note } : {}) : { reason: opts.reason };
  const { review } = (await callGateway('reviews', base, 'POST', `/api/reviews/${encodeURIComponent(id)}/${action}`, body)) as { review: Review };
  process.stdout.write(`${printable(summary(review))}\n`);
}
