import { Command } from 'commander';
import { type GatewayCommandOptions, withGateway } from '../gateway-command.js';

/** `portcullis pins …`: pinned tool definitions, why some are suspicious, and approving the changed ones (admins). */

function listCommand(): Command {
  return withGateway(
    new Command('list')
      .description('pinned tools, and those quarantined until an admin approves their new definition')
      .option('--connection <name>', 'one connection only')
      .option('--json', 'one JSON object per line'),
  ).action(async (opts: GatewayCommandOptions & { connection?: string; json?: boolean }) => (await import('./actions.js')).pinsListAction(opts));
}

function diffCommand(): Command {
  return withGateway(new Command('diff').description("what changed in a quarantined tool's definition").argument('<connection>').argument('<tool>')).action(
    async (connection: string, tool: string, opts: GatewayCommandOptions) => (await import('./actions.js')).pinsDiffAction(connection, tool, opts),
  );
}

function showCommand(): Command {
  return withGateway(
    new Command('show')
      .description("a tool's pin: its status, why it is suspicious, and its definitions")
      .argument('<connection>')
      .argument('<tool>')
      .option('--json', 'the pin as JSON'),
  ).action(async (connection: string, tool: string, opts: GatewayCommandOptions & { json?: boolean }) =>
    (await import('./actions.js')).pinsShowAction(connection, tool, opts),
  );
}

function approveCommand(): Command {
  return withGateway(
    new Command('approve')
      .description("trust a quarantined tool's new definition (admins): it is pinned and the tool is offered again")
      .argument('<connection>')
      .argument('<tool>')
      .option('--digest <sha256>', 'the definition you reviewed (from pins diff): refused if the server offers another by now'),
  ).action(async (connection: string, tool: string, opts: GatewayCommandOptions & { digest?: string }) =>
    (await import('./actions.js')).pinsApproveAction(connection, tool, opts),
  );
}

export function pinsCommand(): Command {
  const pins = new Command('pins').description('tool pinning: list pinned tools and why some are held, diff and approve changed definitions');
  pins.addCommand(listCommand());
  pins.addCommand(showCommand());
  pins.addCommand(diffCommand());
  pins.addCommand(approveCommand());
  return pins;
}
