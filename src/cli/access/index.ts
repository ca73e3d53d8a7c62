import { Command } from 'commander';
import { type GatewayCommandOptions as Common, withGateway } from '../gateway-command.js';

/** `portcullis access …`: just-in-time access requests, over the gateway's API as the signed-in user. */

function requestCommand(): Command {
  return withGateway(
    new Command('request')
      .description('ask for time-bound access to a connection your groups do not open')
      .argument('<connection>', 'the connection')
      .requiredOption('--for <duration>', "how long, e.g. 30m or 1h (at most the connection's access.maxGrant)")
      .requiredOption('--reason <text>', 'why: shown to approvers and kept in the audit trail'),
  ).action(async (connection: string, opts: Common & { for: string; reason: string }) => (await import('./actions.js')).accessRequestAction(connection, opts));
}

function listCommand(): Command {
  return withGateway(
    new Command('list')
      .description('your access requests, and those you may approve (newest first)')
      .option('--status <status>', 'only pending, approved, denied, expired or revoked')
      .option('--json', 'one JSON object per line'),
  ).action(async (opts: Common & { status?: string; json?: boolean }) => (await import('./actions.js')).accessListAction(opts));
}

function decisionCommand(action: 'approve' | 'deny' | 'revoke', description: string): Command {
  return withGateway(
    new Command(action).description(description).argument('<id>', 'the request id').option('--note <text>', 'a note kept with the decision'),
  ).action(async (id: string, opts: Common & { note?: string }) => (await import('./actions.js')).accessDecisionAction(action, id, opts));
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
