import { Command } from 'commander';
import type { GatewayCommandOptions } from './gateway-command.js';

export function connectCommand(): Command {
  return new Command('connect')
    .description('a stdio MCP server for clients that only launch stdio servers (Claude Desktop, IDEs), relaying to the gateway')
    .argument('<connection>', 'the connection (or virtual server) name on the gateway')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file, to find its address")
    .addHelpText('after', '\nThe token comes from $PORTCULLIS_TOKEN if set, else from `portcullis login` (cached per gateway, refreshed when it expires).')
    .action(async (connection: string, opts: GatewayCommandOptions) => (await import('./connect-action.js')).connectAction(connection, opts));
}
