/**
 * The per-request `_meta` envelope of MCP 2026-07-28 (basic/index.mdx): every modern request names its protocol
 * version, client capabilities and (optionally) client info in `params._meta`, where a 2025-era request had the
 * `initialize` handshake. Structural checks only: what a field must be, not what it means.
 */

export const protocolVersionKey = 'io.modelcontextprotocol/protocolVersion';
export const clientInfoKey = 'io.modelcontextprotocol/clientInfo';
export const clientCapabilitiesKey = 'io.modelcontextprotocol/clientCapabilities';
export const logLevelKey = 'io.modelcontextprotocol/logLevel';

/** The first version of the modern (stateless) era; a later date is modern too, known or not. */
export const firstModernVersion = '2026-07-28';
/** The modern versions the gateway serves. */
export const modernVersions: readonly string[] = [firstModernVersion];

export function isModernVersion(version: string): boolean {
  return version >= firstModernVersion;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `params._meta` when it is an object. */
export function metaOf(params: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(params)) return undefined;
  return isPlainObject(params._meta) ? params._meta : undefined;
}

/** Whether the params claim the modern era: `_meta` names a protocol version key (whatever its value). */
export function hasEnvelopeClaim(params: unknown): boolean {
  const meta = metaOf(params);
  return meta !== undefined && protocolVersionKey in meta;
}

/** The version the envelope names, when it is a string. */
export function envelopeVersion(params: unknown): string | undefined {
  const v = metaOf(params)?.[protocolVersionKey];
  return typeof v === 'string' ? v : undefined;
}

export interface EnvelopeIssue {
  key: string;
  problem: string;
}

const logLevels = new Set(['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency']);

/** What is wrong with an envelope: required keys missing first (in the spec's order), then keys of the wrong shape. */
export function envelopeIssues(meta: Record<string, unknown>): EnvelopeIssue[] {
  const issues: EnvelopeIssue[] = [];
  for (const key of [protocolVersionKey, clientCapabilitiesKey]) if (!(key in meta)) issues.push({ key, problem: 'missing' });
  if (protocolVersionKey in meta && typeof meta[protocolVersionKey] !== 'string') issues.push({ key: protocolVersionKey, problem: 'expected a string' });
  if (clientCapabilitiesKey in meta && !isPlainObject(meta[clientCapabilitiesKey])) issues.push({ key: clientCapabilitiesKey, problem: 'expected an object' });
  if (clientInfoKey in meta) {
    const info = meta[clientInfoKey];
    if (!isPlainObject(info) || typeof info.name !== 'string' || typeof info.version !== 'string')
      issues.push({ key: clientInfoKey, problem: 'expected an object with string name and version' });
  }
  if (logLevelKey in meta && !(typeof meta[logLevelKey] === 'string' && logLevels.has(meta[logLevelKey])))
    issues.push({ key: logLevelKey, problem: 'expected a log level' });
  if ('progressToken' in meta && typeof meta.progressToken !== 'string' && typeof meta.progressToken !== 'number')
    issues.push({ key: 'progressToken', problem: 'expected a string or a number' });
  return issues;
}

/** The client a modern request says it comes from, as an `initialize` would have said it. */
export interface EnvelopeClient {
  version: string;
  clientInfo: { name: string; version: string; [k: string]: unknown };
  capabilities: Record<string, unknown>;
}

/** The client facts of a checked envelope (call envelopeIssues first). */
export function envelopeClient(meta: Record<string, unknown>): EnvelopeClient {
  const info = meta[clientInfoKey] as EnvelopeClient['clientInfo'] | undefined;
  return {
    version: meta[protocolVersionKey] as string,
    clientInfo: info ?? { name: 'unnamed-modern-client', version: '0' },
    capabilities: meta[clientCapabilitiesKey] as Record<string, unknown>,
  };
}

/** The request's params with what only frames it removed: `_meta`, `inputResponses`, `requestState` (the MRTR digest's input). */
export function paramsWithoutFraming(params: Record<string, unknown> | undefined): Record<string, unknown> {
  const { _meta, inputResponses, requestState, ...rest } = params ?? {};
  return rest;
}
