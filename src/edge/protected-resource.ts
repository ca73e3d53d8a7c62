import type { ConnectionConfig } from '../config/schema.js';
import type { TrustedIssuer } from '../identity/issuers.js';

/**
 * A connection's OAuth 2.0 Protected Resource Metadata (RFC 9728), which the MCP authorization spec has
 * clients fetch after a 401 to learn which authorization server to sign in with and what resource to ask
 * a token for (RFC 8707). The embedded dev identity is no authorization server, so it is not listed.
 */
export function protectedResourceMetadata(base: string, edge: 'mcp' | 'sse', connection: ConnectionConfig, issuers: readonly TrustedIssuer[]): Record<string, unknown> {
  const external = issuers.filter((i) => !i.config.issuer.startsWith('urn:'));
  const scopes = [...new Set(external.flatMap((i) => i.config.scopes))];
  return {
    resource: `${base}/${edge}/${encodeURIComponent(connection.name)}`,
    ...(external.length > 0 ? { authorization_servers: external.map((i) => i.config.issuer) } : {}),
    bearer_methods_supported: ['header'],
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    resource_name: `Portcullis: ${connection.description ?? connection.name}`,
  };
}
