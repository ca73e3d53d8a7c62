import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { gatewayBaseUrl } from './gateway-url.js';

/** This checkout's CLI entry point: a desktop client launches it by absolute path. */
const cliEntry = fileURLToPath(new URL('../../../bin/portcullis.js', import.meta.url));

/** The `mcpServers` entry that reaches `connection` through `portcullis connect` (stdio), or directly over Streamable HTTP. */
export function mcpConfigEntry(connection: string, base: string, transport: 'stdio' | 'http'): Record<string, unknown> {
  if (transport === 'http') return { type: 'http', url: `${base}/mcp/${encodeURIComponent(connection)}` };
  return { command: process.execPath, args: [cliEntry, 'connect', connection, '--gateway', base] };
}

export function mcpConfigCommand(): Command {
  return new Command('mcp-config')
    .description("print a client configuration entry (Claude Desktop, Cursor, VS Code's mcpServers) for a connection")
    .argument('<connection>', 'the connection name on the gateway')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file, to find its address")
    .option('--http', 'a Streamable HTTP entry (for clients that sign in with OAuth themselves) instead of `portcullis connect`')
    .action((connection: string, opts: { gateway?: string; config?: string; http?: boolean }) => {
      const base = gatewayBaseUrl('mcp-config', opts.gateway, opts.config);
      const entry = mcpConfigEntry(connection, base, opts.http ? 'http' : 'stdio');
      process.stdout.write(`${JSON.stringify({ mcpServers: { [connection]: entry } }, null, 2)}\n`);
      if (!opts.http) process.stderr.write('Sign in first with `portcullis login`; `connect` uses the cached token.\n');
    });
}
