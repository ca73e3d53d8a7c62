import { assertPublicHost, EndpointError } from '../identity/endpoint-policy.js';
import type { LoginTarget } from '../identity/oidc-login.js';
import { isLoopbackHost } from '../net/loopback.js';
import { configForCommand } from './load-config.js';

export interface TargetOptions {
  issuer?: string;
  clientId?: string;
  config?: string;
}

/**
 * Which IdP and client `portcullis login` signs in with, for the gateway at `base`: --issuer/--client-id; else the
 * gateway's config (its issuers with a clientId); else the gateway itself, whose metadata names its issuers and
 * their public clients. Throws with what to pass when none of them says.
 */
export async function loginTarget(base: string, o: TargetOptions): Promise<LoginTarget> {
  const defaultScopes = ['openid', 'profile', 'email', 'offline_access'];
  if (o.config !== undefined) {
    const issuers = configForCommand(o.config).identity.issuers.filter((i) => i.clientId !== undefined && (o.issuer === undefined || i.issuer === o.issuer));
    const chosen = issuers[0];
    if (chosen === undefined) {
      throw new Error(
        `the config names no issuer${o.issuer ? ` ${o.issuer}` : ''} with a clientId (identity.issuers[].clientId: the public client registered for Portcullis at the IdP)`,
      );
    }
    return {
      issuer: chosen.issuer,
      clientId: o.clientId ?? chosen.clientId!,
      scopes: chosen.scopes,
      resource: base,
      endpointHosts: chosen.endpointHosts,
      named: true,
    };
  }
  if (o.issuer !== undefined && o.clientId !== undefined)
    return { issuer: o.issuer, clientId: o.clientId, scopes: defaultScopes, resource: base, endpointHosts: [], named: true };
  let doc: { authorization_servers?: unknown; portcullis_clients?: unknown };
  try {
    const res = await fetch(`${base}/.well-known/oauth-protected-resource`, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (err) {
    throw new Error(`cannot ask the gateway at ${base} how to sign in (${(err as Error).message}); pass --config, or --issuer and --client-id`);
  }
  const servers = Array.isArray(doc.authorization_servers) ? doc.authorization_servers.filter((s): s is string => typeof s === 'string') : [];
  if (servers.length === 0) {
    throw new Error(`the gateway at ${base} names no identity provider: it runs the dev identity, so sign in with --dev <user>`);
  }
  const issuer = o.issuer ?? servers[0]!;
  // An issuer the gateway names (not the user) must not lead the CLI to an address nobody chose.
  if (o.issuer === undefined) await checkNamedByGateway(issuer, base);
  const client = ((doc.portcullis_clients ?? {}) as Record<string, { client_id?: unknown; scopes?: unknown; endpoint_hosts?: unknown } | undefined>)[issuer];
  const clientId = o.clientId ?? (typeof client?.client_id === 'string' ? client.client_id : undefined);
  if (clientId === undefined) throw new Error(`the gateway names no public client for ${issuer}; pass --client-id`);
  // The scopes of this issuer only: another IdP's scope names mean nothing (or an error) here.
  const scopes = Array.isArray(client?.scopes) ? client.scopes.filter((s): s is string => typeof s === 'string') : defaultScopes;
  const endpointHosts = Array.isArray(client?.endpoint_hosts) ? client.endpoint_hosts.filter((s): s is string => typeof s === 'string') : [];
  return { issuer, clientId, scopes, resource: base, endpointHosts, named: o.issuer !== undefined };
}

/**
 * An issuer learnt from the gateway's metadata: https on a public address. Plain http, or an address on this
 * machine, only when the gateway itself was reached on loopback (a local gateway naming its local IdP). A private or
 * link-local address never: whoever runs the gateway does not get to send the CLI into the user's own network.
 */
async function checkNamedByGateway(issuer: string, base: string): Promise<void> {
  const refuse = (why: string) => {
    throw new Error(
      `the gateway at ${base} names the identity provider ${JSON.stringify(issuer.slice(0, 200))}, ${why}; to sign in there anyway, name it yourself with --issuer and --client-id, or --config`,
    );
  };
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return refuse('which is not a URL');
  }
  const localGateway = isLoopbackHost(new URL(base).hostname);
  if (localGateway && isLoopbackHost(url.hostname) && (url.protocol === 'https:' || url.protocol === 'http:')) return;
  if (url.protocol !== 'https:') return refuse('which is not https');
  try {
    await assertPublicHost(url.hostname, 'it');
  } catch (err) {
    if (!(err instanceof EndpointError)) throw err;
    refuse(`but ${err.message}`);
  }
}
