import { checkDiscoveredEndpoints, EndpointError } from './endpoint-policy.js';

/**
 * OpenID Connect discovery: an issuer's metadata from `<issuer>/.well-known/openid-configuration`. The
 * document must name the same issuer exactly (OpenID Connect Discovery §4.3), or it is refused: a proxy or a
 * misconfigured IdP must not get the gateway to trust another issuer's keys. Nor may it send the gateway to
 * another host for them (endpoint-policy.ts).
 */

export interface IssuerMetadata {
  issuer: string;
  jwks_uri: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  device_authorization_endpoint?: string;
  registration_endpoint?: string;
  code_challenge_methods_supported?: string[];
  scopes_supported?: string[];
}

export class DiscoveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryError';
  }
}

export function discoveryUrl(issuer: string): URL {
  return new URL(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
}

/**
 * The issuer's metadata, its endpoints checked against `policy` (on the issuer's host, or its configured
 * endpointHosts; see endpoint-policy.ts): a document that points elsewhere is refused before anything is fetched there.
 */
export async function discover(issuer: string, policy: { endpointHosts?: readonly string[] } = {}, timeoutMs = 5000): Promise<IssuerMetadata> {
  const url = discoveryUrl(issuer);
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new DiscoveryError(
      `${url.href} could not be fetched: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new DiscoveryError(`${url.href} answered HTTP ${res.status}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = (await res.json()) as Record<string, unknown>;
  } catch {
    throw new DiscoveryError(`${url.href} did not return JSON`);
  }
  if (doc === null || typeof doc !== 'object') throw new DiscoveryError(`${url.href} did not return a JSON object`);
  if (doc.issuer !== issuer) {
    throw new DiscoveryError(`${url.href} names the issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)} as configured`);
  }
  try {
    checkDiscoveredEndpoints(doc, { issuer, ...policy }, true);
  } catch (err) {
    if (err instanceof EndpointError) throw new DiscoveryError(err.message);
    throw err;
  }
  return doc as unknown as IssuerMetadata;
}
