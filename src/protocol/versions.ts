import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

/** Protocol versions the gateway relays; taken from the SDK so both move together. */
export const supportedProtocolVersions: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
export const latestProtocolVersion: string = LATEST_PROTOCOL_VERSION;

/** The version a Streamable HTTP client that sends no MCP-Protocol-Version header is assumed to speak. */
export const defaultHttpProtocolVersion = '2025-03-26';

export function isSupportedProtocolVersion(v: string): boolean {
  return supportedProtocolVersions.includes(v);
}
