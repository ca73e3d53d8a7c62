import type { IncomingMessage } from 'node:http';

/**
 * DNS-rebinding defence: a browser tricked into talking to the gateway sends a foreign Host or Origin.
 * Requests without an Origin (non-browser clients) are judged by Host alone.
 */
export interface HostPolicy {
  /** Host names, with or without :port; a name without a port matches any port. */
  allowedHosts: readonly string[];
  /** Exact origins (scheme://host[:port]) allowed besides the gateway's own; browsers on any other page are refused. */
  allowedOrigins: readonly string[];
  /**
   * The gateway's own origins (http.publicUrl, else the listen address and its loopback aliases), always allowed:
   * its console's page calls its API from them.
   */
  ownOrigins?: (() => readonly string[]) | undefined;
}

export const loopbackHosts = ['localhost', '127.0.0.1', '[::1]'];

function splitHost(host: string): { name: string; port?: string } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host.trim().toLowerCase());
  if (!m) return { name: '' };
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, port: m[2] };
}

function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const h = splitHost(host);
  if (h.name === '') return false;
  return allowed.some((entry) => {
    const a = splitHost(entry);
    return a.name === h.name && (a.port === undefined || a.port === h.port);
  });
}

/** Returns why a request is refused, or undefined when it may proceed. */
export function checkHostAndOrigin(req: IncomingMessage, policy: HostPolicy): string | undefined {
  const host = req.headers.host;
  if (host === undefined || !hostAllowed(host, policy.allowedHosts)) {
    return `Host ${JSON.stringify(host ?? '')} is not allowed (http.allowedHosts)`;
  }
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  // Only the gateway's own origins and the listed ones: any page on a loopback host (a dev server on
  // localhost:3000, a page another local user serves) is another site, whatever its host name.
  const allowed = policy.allowedOrigins.includes(origin) || (policy.ownOrigins?.().includes(origin) ?? false);
  return allowed ? undefined : `Origin ${JSON.stringify(origin)} is not allowed (http.allowedOrigins)`;
}
