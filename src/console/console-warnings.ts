import type { GatewayConfig } from '../config/schema.js';
import { consoleIssuers } from './oidc-sign-in.js';

/** What keeps the web console from working as a config has it, for `config check` and the start-up log. */
export function consoleWarnings(config: GatewayConfig): string[] {
  if (!config.console.enabled) return [];
  if (config.recording.mode === 'off') return ['the web console needs the recording store, and recording.mode is off: the console is off'];
  const out: string[] = [];
  if (config.identity.issuers.length > 0 && consoleIssuers(config.identity.issuers).length === 0) {
    out.push('nobody can sign in to the web console: give an issuer a client for it (identity.issuers[].clientId or .console.clientId)');
  }
  if (config.roles.auditors.length === 0) out.push('roles.auditors is empty: in the web console and /api/sessions, every person sees only their own sessions');
  return out;
}
