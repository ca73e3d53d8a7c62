import { Command } from 'commander';
import { runStdioBridge } from '../edge/stdio-bridge.js';
import { gatewayBaseUrl } from './gateway-url.js';
import { currentToken } from './token-source.js';

export function connectCommand(): Command {
  return new Command('connect')
    .description('a stdio MCP server for clients that only launch stdio servers (Claude Desktop, IDEs), relaying to the gateway')
    .argument('<connection>', 'the connection name on the gateway')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file, to find its address")
    .addHelpText('after', '\nThe token comes from $PORTCULLIS_TOKEN if set, else from `portcullis login` (cached per gateway, refreshed when it expires).')
    .action(async (connection: string, opts: { gateway?: string; config?: string }) => {
      const base = gatewayBaseUrl('connect', opts.gateway, opts.config);
      const endpoint = new URL(`mcp/${encodeURIComponent(connection)}`, `${base}/`);
      const report = (line: string) => process.stderr.write(`portcullis connect: ${line}\n`);
      await runStdioBridge({ endpoint, report, token: () => currentToken(base, report) });
      process.exit(0);
    });
}
