import { Command } from 'commander';
import type { AccessRequestRow } from '../../store/types.js';
import { callGateway } from '../gateway-api.js';
import { gatewayBaseUrl } from '../gateway-url.js';
import { type GatewayCommandOptions as Common, isoSeconds as iso, withGateway } from '../gateway-command.js';
import { table } from '../table.js';

/** `portcullis access …`: just-in-time access requests, over the gateway's API as the signed-in user. */

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

function requestCommand(): Command {
  return withGateway(
    new Command('request')
      .description('ask for time-bound access to a connection your groups do not open')
      .argument('<connection>', 'the connection')
      .requiredOption('--for <duration>', "how long, e.g. 30m or 1h (at most the connection's access.maxGrant)")
      .requiredOption('--reason <text>', 'why: shown to approvers and kept in the audit trail'),
  ).action(async (connection: string, opts: Common & { for: string; reason: string }) => {
    const base = gatewayBaseUrl('access', opts.gateway, opts.config);
    const { request } = (await callGateway('access', base, 'POST', '/api/access', { connection, duration: opts.for, reason: opts.reason })) as {
      request: AccessRequestRow;
    };
    process.stdout.write(`${describe(request)}\n`);
  });
}

function listCommand(): Command {
  return withGateway(
    new Command('list')
      .description('your access requests, and those you may approve (newest first)')
      .option('--status <status>', 'only pending, approved, denied, expired or revoked')
      .option('--json', 'one JSON object per line'),
  ).action(async (opts: Common & { status?: string; json?: boolean }) => {
    const base = gatewayBaseUrl('access', opts.gateway, opts.config);
    const { requests } = (await callGateway('access', base, 'GET', `/api/access${opts.status ? `?status=${encodeURIComponent(opts.status)}` : ''}`)) as {
      requests: AccessRequestRow[];
    };
    if (opts.json) {
      for (const r of requests) process.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    if (requests.length === 0) {
      process.stdout.write('no access requests\n');
      return;
    }
    const rows = [['ID', 'CONNECTION', 'REQUESTER', 'FOR', 'STATUS', 'CREATED', 'UNTIL', 'DECIDED BY', 'REASON']];
    for (const r of requests) {
      rows.push([
        r.id,
        r.connection,
        r.requesterSubject,
        minutes(r.durationMs),
        r.status,
        iso(r.createdAtUs),
        iso(r.expiresAtUs),
        r.deciderSubject ?? '-',
        r.reason,
      ]);
    }
    process.stdout.write(`${table(rows)}\n`);
  });
}

function decisionCommand(action: 'approve' | 'deny' | 'revoke', description: string): Command {
  return withGateway(
    new Command(action).description(description).argument('<id>', 'the request id').option('--note <text>', 'a note kept with the decision'),
  ).action(async (id: string, opts: Common & { note?: string }) => {
    const base = gatewayBaseUrl('access', opts.gateway, opts.config);
    const { request } = (await callGateway(
      'access',
      base,
      'POST',
      `/api/access/${encodeURIComponent(id)}/${action}`,
      opts.note ? { note: opts.note } : {},
    )) as {
      request: AccessRequestRow;
    };
    process.stdout.write(`${describe(request)}\n`);
  });
}

export function accessCommand(): Command {
  const access = new Command('access').description('just-in-time access: request, list, approve, deny, revoke');
  access.addCommand(requestCommand());
  access.addCommand(listCommand());
  access.addCommand(decisionCommand('approve', 'approve a pending request (not your own): a grant until its time runs out'));
  access.addCommand(decisionCommand('deny', 'deny a pending request'));
  access.addCommand(decisionCommand('revoke', 'end a grant now; the sessions that depend on it end'));
  return access;
}
