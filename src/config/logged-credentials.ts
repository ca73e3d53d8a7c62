import { SecretString } from '../core/secrets.js';
import { type Credential, CredentialScrubber } from '../scrub/credential-scrubber.js';
import { injectedCredentials } from '../upstream/injected-credentials.js';
import type { GatewayConfig } from './schema.js';

/**
 * Every secret the process holds from its config, for the log's scrubber: what each reference anywhere in the config
 * resolved to (an audit sink's or the OTLP exporter's headers, webhook secrets, the cluster secret, a store password,
 * connections' headers and environment), plus what the connections' servers are handed besides (`passEnv`). A walk
 * of the whole config rather than a list, so that a secret a later feature adds to its slice is scrubbed too.
 */
export function configCredentials(config: GatewayConfig): CredentialScrubber {
  const found: Credential[] = [];
  const seen = new Set<unknown>();
  const walk = (value: unknown, path: string): void => {
    if (value instanceof SecretString) {
      for (const v of value.referencedValues()) found.push({ name: path, value: v });
      return;
    }
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (value instanceof Map) for (const [k, v] of value) walk(v, `${path}.${String(k)}`);
    else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}[${i}]`));
    else for (const [k, v] of Object.entries(value)) walk(v, path === '' ? k : `${path}.${k}`);
  };
  walk(config, '');
  for (const c of config.connections.values()) found.push(...injectedCredentials(c.name, c.upstream));
  return new CredentialScrubber(found);
}
