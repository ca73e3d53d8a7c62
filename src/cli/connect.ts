import { Command } from 'commander';
import { runStdioBridge } from '../edge/stdio-bridge.js';
import { configForCommand } from './load-config.js';

export function connectCommand(): Command {
  return new Command('connect')
    .description('a stdio MCP server for clients that only launch stdio servers (Claude Desktop, IDEs), relaying to the gateway')
    .argument('<connection>', 'the connection name on the gateway')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file, to find its address")
    .action(async (connection: string, opts: { gateway?: string; config?: string }) => {
      let base = opts.gateway ?? process.env.PORTCULLIS_URL;
      if (base === undefined && opts.config !== undefined) {
        const { host, port } = configForCommand(opts.config).listen;
        base = `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
      }
      let endpoint: URL;
      try {
        endpoint = new URL(`mcp/${encodeURIComponent(connection)}`, `${(base ?? 'http://127.0.0.1:8080').replace(/\/+$/, '')}/`);
      } catch {
        process.stderr.write(`portcullis connect: --gateway expects a URL such as http://127.0.0.1:8080, found ${JSON.stringify(base)}\n`);
        process.exit(2);
      }
      await runStdioBridge({ endpoint });
      process.exit(0);
    });
}
