import type { ConnectionConfig } from '../config/schema.js';
import type { TrustedIssuer } from '../identity/issuers.js';

/**
 * A connection's OAuth 2.0 Protected Resource Metadata (RFC 9728), which the MCP authorization spec has
 * clients fetch after a 401 to learn which authorization server to sign in with and what resource to ask
 * a token for (RFC 8707). The embedded dev identity is no authorization server, so it is not listed.
 */
export function protectedResourceMetadata(
  base: string,
  edge: 'mcp' | 'sse',
  connection: ConnectionConfig,
  issuers: readonly TrustedIssuer[],
): Record<string, unknown> {
  return metadata(`${base}/${edge}/${encodeURIComponent(connection.name)}`, `Portcullis: ${connection.description ?? connection.name}`, issuers);
}

/** RFC 9728 metadata for `resource`: the issuers clients can sign in with, and their scopes. */
function metadata(resource: string, name: string, issuers: readonly TrustedIssuer[]): Record<string, unknown> {
  const servers = issuers.filter((i) => i.authorizationServer);
  const scopes = [...new Set(servers.flatMap((i) => i.config.scopes))];
  return {
    resource,
    ...(servers.length > 0 ? { authorization_servers: servers.map((i) => i.config.issuer) } : {}),
    bearer_methods_supported: ['header'],
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    resource_name: name,
  };
}

/**
 * The gateway's own metadata (`/.well-known/oauth-protected-resource`, no path): the gateway as one resource,
 * which is what `portcullis login` asks a token for, so that one sign-in serves every connection the caller's
 * groups allow. `portcullis_clients` (an extension RFC 9728 §2 allows) names the public client to sign in with
 * at each issuer, the scopes to ask that issuer for, and the hosts besides the issuer's its endpoints are on.
 */
export function gatewayMetadata(base: string, issuers: readonly TrustedIssuer[]): Record<string, unknown> {
  const clients = Object.fromEntries(
    issuers
      .filter((i) => i.authorizationServer && i.config.clientId !== undefined)
      .map((i) => [
        i.config.issuer,
        { client_id: i.config.clientId!, scopes: i.config.scopes, ...(i.config.endpointHosts.length > 0 ? { endpoint_hosts: i.config.endpointHosts } : {}) },
      ]),
  );
  return { ...metadata(base, 'Portcullis', issuers), ...(Object.keys(clients).length > 0 ? { portcullis_clients: clients } : {}) };
}
