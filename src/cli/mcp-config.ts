import { Command } from 'commander';
import type { GatewayCommandOptions } from './gateway-command.js';

export function mcpConfigCommand(): Command {
  return new Command('mcp-config')
    .description("print a client configuration entry (Claude Desktop, Cursor, VS Code's mcpServers) for a connection or a virtual server")
    .argument('<connection>', 'the connection (or virtual server) name on the gateway')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file, to find its address")
    .option('--http', 'a Streamable HTTP entry (for clients that sign in with OAuth themselves) instead of `portcullis connect`')
    .action(async (connection: string, opts: GatewayCommandOptions & { http?: boolean }) =>
      (await import('./mcp-config-action.js')).mcpConfigAction(connection, opts),
    );
}
