import type { UpstreamConfig } from './config.js';
import { type Credential, CredentialScrubber, minimumCredentialLength } from '../scrub/credential-scrubber.js';
import { passedEnvironment } from './stdio.js';

/**
 * Every value the gateway (or an agent) hands a connection's server that it must never see come back: what the
 * references in its headers, URL, environment and arguments resolved to, and the variables `passEnv` passes through.
 * Literal config text is not a credential (the config refuses literals for credential-looking names).
 */
export function injectedCredentials(connection: string, upstream: UpstreamConfig): Credential[] {
  const out: Credential[] = [];
  if (upstream.kind === 'stdio') {
    for (const [k, v] of Object.entries(upstream.env)) for (const value of v.referencedValues()) out.push({ name: `${connection}.env.${k}`, value });
    upstream.args.forEach((a, i) => a.referencedValues().forEach((value) => out.push({ name: `${connection}.args[${i}]`, value })));
    for (const [k, value] of Object.entries(passedEnvironment(upstream.passEnv))) out.push({ name: `${connection}.env.${k}`, value });
  } else if (upstream.kind === 'http' || upstream.kind === 'sse') {
    for (const [k, v] of Object.entries(upstream.headers)) for (const value of v.referencedValues()) out.push({ name: `${connection}.headers.${k}`, value });
    for (const value of upstream.url.referencedValues()) out.push({ name: `${connection}.url`, value });
  }
  return out;
}

const scrubbers = new WeakMap<UpstreamConfig, CredentialScrubber>();

/** The scrubber for what a connection's server sends: built once per connection config, shared by its sessions. */
export function upstreamScrubber(connection: string, upstream: UpstreamConfig): CredentialScrubber {
  let scrubber = scrubbers.get(upstream);
  if (scrubber === undefined) scrubbers.set(upstream, (scrubber = new CredentialScrubber(injectedCredentials(connection, upstream))));
  return scrubber;
}

/** The credentials of a connection too short to be scrubbed (minimumCredentialLength), by name: worth a warning at start. */
export function unscrubbableCredentials(connection: string, upstream: UpstreamConfig): string[] {
  return injectedCredentials(connection, upstream)
    .filter((c) => c.value.length > 0 && c.value.length < minimumCredentialLength)
    .map((c) => c.name);
}
