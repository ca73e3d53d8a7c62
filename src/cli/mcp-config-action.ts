import { fileURLToPath } from 'node:url';
import type { GatewayCommandOptions } from './gateway-command.js';
import { gatewayBaseUrl } from './gateway-url.js';

/** This checkout's CLI entry point: a desktop client launches it by absolute path. */
const cliEntry = fileURLToPath(new URL('../../../bin/portcullis.js', import.meta.url));

/** The `mcpServers` entry that reaches `connection` through `portcullis connect` (stdio), or directly over Streamable HTTP. */
export function mcpConfigEntry(connection: string, base: string, transport: 'stdio' | 'http'): Record<string, unknown> {
  if (transport === 'http') return { type: 'http', url: `${base}/mcp/${encodeURIComponent(connection)}` };
  return { command: process.execPath, args: [cliEntry, 'connect', connection, '--gateway', base] };
}

/** `portcullis mcp-config`: the client entry for a connection, as JSON on stdout. */
export async function mcpConfigAction(connection: string, opts: GatewayCommandOptions & { http?: boolean }): Promise<void> {
  const base = await gatewayBaseUrl('mcp-config', opts.gateway, opts.config);
  if (opts.config !== undefined) {
    // With the gateway's config at hand, a misspelt name is caught here rather than by the desktop client's first 404.
    const { configForCommand } = await import('./load-config.js');
    const names = [...configForCommand(opts.config).connections.keys()];
    if (!names.includes(connection)) {
      process.stderr.write(
        `portcullis mcp-config: ${opts.config} has no connection or virtual server named ${JSON.stringify(connection)}; it has: ${names.join(', ')}\n`,
      );
      process.exit(2);
    }
  }
  const entry = mcpConfigEntry(connection, base, opts.http ? 'http' : 'stdio');
  process.stdout.write(`${JSON.stringify({ mcpServers: { [connection]: entry } }, null, 2)}\n`);
  if (!opts.http) process.stderr.write('Sign in first with `portcullis login`; `connect` uses the cached token.\n');
}
