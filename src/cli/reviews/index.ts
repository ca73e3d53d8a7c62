import { Command } from 'commander';
import { type GatewayCommandOptions, withGateway } from '../gateway-command.js';

/** `portcullis reviews …`: calls held by guardrail rules, over the gateway's API as the signed-in user. */

function listCommand(): Command {
  return withGateway(
    new Command('list')
      .description('held calls you may decide, and your own (newest first)')
      .option('--status <status>', 'only pending, approved, released, rejected, expired, interrupted or cancelled')
      .option('--json', 'one JSON object per line'),
  ).action(async (opts: GatewayCommandOptions & { status?: string; json?: boolean }) => (await import('./actions.js')).reviewsListAction(opts));
}

function showCommand(): Command {
  return withGateway(
    new Command('show')
      .description('one review: who called what, with the full arguments, and its decisions')
      .argument('<id>', 'the review id')
      .option('--json', 'as JSON'),
  ).action(async (id: string, opts: GatewayCommandOptions & { json?: boolean }) => (await import('./actions.js')).reviewsShowAction(id, opts));
}

function decisionCommand(action: 'approve' | 'reject'): Command {
  const cmd = new Command(action).argument('<id>', 'the review id');
  if (action === 'approve')
    cmd
      .description('approve a held call (not your own): it goes on to the server once enough approvers have')
      .option('--note <text>', 'a note kept with the approval');
  else cmd.description('reject a held call: the caller gets an error naming you and your reason').requiredOption('--reason <text>', 'why: the caller is told');
  return withGateway(cmd).action(async (id: string, opts: GatewayCommandOptions & { note?: string; reason?: string }) =>
    (await import('./actions.js')).reviewsDecisionAction(action, id, opts),
  );
}

export function reviewsCommand(): Command {
  const reviews = new Command('reviews').description('calls held by guardrail rules: list, show, approve, reject');
  reviews.addCommand(listCommand());
  reviews.addCommand(showCommand());
  reviews.addCommand(decisionCommand('approve'));
  reviews.addCommand(decisionCommand('reject'));
  return reviews;
}
