import { runStdioBridge } from '../edge/stdio-bridge.js';
import type { GatewayCommandOptions } from './gateway-command.js';
import { gatewayBaseUrl } from './gateway-url.js';
import { currentToken } from './token-source.js';

/** `portcullis connect`: a stdio MCP server on this process, relaying to the connection on the gateway until stdin ends. */
export async function connectAction(connection: string, opts: GatewayCommandOptions): Promise<void> {
  const base = await gatewayBaseUrl('connect', opts.gateway, opts.config);
  const endpoint = new URL(`mcp/${encodeURIComponent(connection)}`, `${base}/`);
  const report = (line: string) => process.stderr.write(`portcullis connect: ${line}\n`);
  await runStdioBridge({ endpoint, report, token: () => currentToken(base, report) });
  process.exit(0);
}
