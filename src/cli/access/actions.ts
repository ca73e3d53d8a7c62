import type { AccessRequestRow } from '../../store/access-types.js';
import { callGateway } from '../gateway-api.js';
import { gatewayBaseUrl } from '../gateway-url.js';
import { type GatewayCommandOptions as Common, isoSeconds as iso } from '../gateway-command.js';
import { printList } from '../print-list.js';

/** What `portcullis access …` does, over the gateway's API as the signed-in user (the flags are in index.ts). */

function minutes(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

function describe(r: AccessRequestRow): string {
  switch (r.status) {
    case 'pending':
      return `request ${r.id}: ${r.requesterSubject} asks for '${r.connection}' for ${minutes(r.durationMs)} (waiting for an approver until ${iso(r.expiresAtUs)})`;
    case 'approved':
      return `request ${r.id}: ${r.requesterSubject} may use '${r.connection}' until ${iso(r.expiresAtUs)} (approved by ${r.deciderSubject})`;
    default:
      return `request ${r.id}: ${r.status}${r.deciderSubject ? ` by ${r.deciderSubject}` : ''}${r.decisionNote ? ` (${r.decisionNote})` : ''}`;
  }
}

export async function accessRequestAction(connection: string, opts: Common & { for: string; reason: string }): Promise<void> {
  const base = await gatewayBaseUrl('access', opts.gateway, opts.config);
  const { request } = (await callGateway('access', base, 'POST', '/api/access', { connection, duration: opts.for, reason: opts.reason })) as {
    request: AccessRequestRow;
  };
  process.stdout.write(`${describe(request)}\n`);
}

export async function accessListAction(opts: Common & { status?: string; json?: boolean }): Promise<void> {
  const base = await gatewayBaseUrl('access', opts.gateway, opts.config);
  const { requests } = (await callGateway('access', base, 'GET', `/api/access${opts.status ? `?status=${encodeURIComponent(opts.status)}` : ''}`)) as {
    requests: AccessRequestRow[];
  };
  printList(requests, {
    json: opts.json,
    none: 'no access requests',
    header: ['ID', 'CONNECTION', 'REQUESTER', 'FOR', 'STATUS', 'CREATED', 'UNTIL', 'DECIDED BY', 'REASON'],
    row: (r) => [
      r.id,
      r.connection,
      r.requesterSubject,
      minutes(r.durationMs),
      r.status,
      iso(r.createdAtUs),
      iso(r.expiresAtUs),
      r.deciderSubject ?? '-',
      r.reason,
    ],
  });
}

export async function accessDecisionAction(action: 'approve' | 'deny' | 'revoke', id: string, opts: Common & { note?: string }): Promise<void> {
  const base = await gatewayBaseUrl('access', opts.gateway, opts.config);
  const { request } = (await callGateway('access', base, 'POST', `/api/access/${encodeURIComponent(id)}/${action}`, opts.note ? { note: opts.note } : {})) as {
    request: AccessRequestRow;
  };
  process.stdout.write(`${describe(request)}\n`);
}
