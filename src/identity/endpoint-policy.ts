import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { isLoopbackHost } from '../net/loopback.js';

/**
 * Where an identity provider's discovery document may send the gateway and the CLI. A discovery document (or a
 * gateway's metadata) is text someone else wrote: it must not point a request at an address nobody chose, such as
 * a cloud metadata service (169.254.169.254), a service on the caller's own machine, or one inside its network.
 *
 * An endpoint found by discovery (jwks_uri, the authorization, token, device and registration endpoints) must be
 * https on the issuer's own host and port, or on a host configured for that issuer (`identity.issuers[].endpointHosts`).
 * Plain http only where the issuer itself is plain http on loopback (a local IdP for development and tests), and
 * the endpoint is on loopback too. An issuer configured explicitly on a loopback or private address names its own host, so its
 * endpoints there are allowed; nothing else leads to such an address.
 */

export class EndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

/** Address ranges never reached unless named explicitly: this machine, private networks, link-local, and the unusable. */
const internal = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  internal.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  internal.addSubnet(net, bits, 'ipv6');
}

/**
 * IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) may hide any of them, and a URL writes the mapped form
 * in hex (`[::ffff:a9fe:a9fe]` is 169.254.169.254): refused whatever they hold. A list of their own, since BlockList
 * matches every IPv4 address against a ::ffff:0:0/96 rule.
 */
const embedsIpv4 = new BlockList();
for (const [net, bits] of [
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['2002::', 16],
] as const) {
  embedsIpv4.addSubnet(net, bits, 'ipv6');
}

/** Whether an IP address (v4, v6, or v4-mapped v6) is loopback, private, link-local, or otherwise not a public address. */
export function isInternalAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare)?.[1];
  if (mapped !== undefined) return internal.check(mapped, 'ipv4');
  const family = isIP(bare);
  if (family === 4) return internal.check(bare, 'ipv4');
  if (family === 6) return internal.check(bare, 'ipv6') || embedsIpv4.check(bare, 'ipv6');
  return false;
}

/** Whether a URL's host is, as written, an internal address or a loopback name (`localhost`). */
export function isInternalHost(hostname: string): boolean {
  return isLoopbackHost(hostname) || isInternalAddress(hostname);
}

/**
 * Resolves a host name and refuses it when it is, or resolves to, an internal address: for hosts that no
 * configuration named (an issuer a gateway's metadata names to the CLI). A DNS answer that changes between this
 * check and the connection is not caught here; endpoints must still be on the issuer's host.
 */
export async function assertPublicHost(hostname: string, what: string): Promise<void> {
  if (isInternalHost(hostname)) throw new EndpointError(`${what} is on ${hostname}, an address on this machine or a private or link-local network`);
  if (isIP(hostname.replace(/^\[|\]$/g, '')) !== 0) return;
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(hostname, { all: true, verbatim: true });
  } catch (err) {
    throw new EndpointError(`${what}: ${hostname} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const inside = addresses.find((a) => isInternalAddress(a.address));
  if (inside !== undefined)
    throw new EndpointError(`${what} is on ${hostname}, which resolves to ${inside.address}: an address on this machine or a private or link-local network`);
}

/** host[:port] as a URL writes it, for an `endpointHosts` entry (`idp.example.com`, `idp.example.com:8443`). */
function normalHost(entry: string): string | undefined {
  try {
    return new URL(`https://${entry}`).host;
  } catch {
    return undefined;
  }
}

export interface EndpointPolicy {
  /** The issuer, whose host (with its port) endpoints may use. */
  issuer: string;
  /** Further hosts (host or host:port; no port means 443) the issuer's endpoints may use. */
  endpointHosts?: readonly string[];
}

/** The endpoint as a URL when the policy allows it; throws EndpointError saying why not. */
export function checkEndpoint(name: string, value: unknown, policy: EndpointPolicy): URL {
  if (typeof value !== 'string') throw new EndpointError(`its discovery document has no ${name}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EndpointError(`its discovery document's ${name} is not a URL`);
  }
  const issuer = new URL(policy.issuer);
  const sameHost = url.host === issuer.host;
  const listed = (policy.endpointHosts ?? []).some((h) => normalHost(h) === url.host);
  if (!sameHost && !listed) {
    throw new EndpointError(
      `its discovery document's ${name} is on ${JSON.stringify(url.host)}, not on the issuer's host ${JSON.stringify(issuer.host)}; if that host is the IdP's, list it under identity.issuers[].endpointHosts`,
    );
  }
  // Plain http stays on this machine: a local IdP (itself plain http on loopback) and its loopback endpoints.
  const localHttp = url.protocol === 'http:' && issuer.protocol === 'http:' && isLoopbackHost(url.hostname) && (sameHost || listed);
  if (url.protocol !== 'https:' && !localHttp) throw new EndpointError(`its discovery document's ${name} ${JSON.stringify(url.origin)} is not https`);
  return url;
}

/** The endpoints of a discovery document the gateway and the CLI may use: each checked when present (jwks_uri always). */
export const discoveredEndpoints = [
  'jwks_uri',
  'authorization_endpoint',
  'token_endpoint',
  'device_authorization_endpoint',
  'registration_endpoint',
  'userinfo_endpoint',
  'revocation_endpoint',
  'introspection_endpoint',
  'end_session_endpoint',
  'pushed_authorization_request_endpoint',
] as const;

/** Checks every endpoint a discovery document names; `jwks_uri` must be there when `needsJwks`. */
export function checkDiscoveredEndpoints(doc: Record<string, unknown>, policy: EndpointPolicy, needsJwks: boolean): void {
  for (const name of discoveredEndpoints) {
    if (doc[name] === undefined && (name !== 'jwks_uri' || !needsJwks)) continue;
    checkEndpoint(name, doc[name], policy);
  }
  // RFC 8705 mTLS aliases are endpoints too.
  const aliases = doc.mtls_endpoint_aliases;
  if (aliases !== null && typeof aliases === 'object') {
    for (const [name, value] of Object.entries(aliases as Record<string, unknown>)) checkEndpoint(`mtls_endpoint_aliases.${name}`, value, policy);
  }
}
