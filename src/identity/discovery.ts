/**
 * OpenID Connect discovery: an issuer's metadata from `<issuer>/.well-known/openid-configuration`. The
 * document must name the same issuer exactly (OpenID Connect Discovery §4.3), or it is refused: a proxy or a
 * misconfigured IdP must not get the gateway to trust another issuer's keys.
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

/** https, or http when the issuer itself is plain http on loopback (a local IdP). */
function checkEndpoint(name: string, value: unknown, issuer: URL): URL {
  if (typeof value !== 'string') throw new DiscoveryError(`its discovery document has no ${name}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DiscoveryError(`its discovery document's ${name} is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && issuer.protocol === 'http:')) {
    throw new DiscoveryError(`its discovery document's ${name} is not https`);
  }
  return url;
}

export async function discover(issuer: string, timeoutMs = 5000): Promise<IssuerMetadata> {
  const url = discoveryUrl(issuer);
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new DiscoveryError(`${url.href} could not be fetched: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
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
  const base = new URL(issuer);
  checkEndpoint('jwks_uri', doc.jwks_uri, base);
  for (const name of ['authorization_endpoint', 'token_endpoint', 'device_authorization_endpoint', 'registration_endpoint'] as const) {
    if (doc[name] !== undefined) checkEndpoint(name, doc[name], base);
  }
  return doc as unknown as IssuerMetadata;
}
