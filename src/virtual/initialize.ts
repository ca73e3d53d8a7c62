import { latestProtocolVersion, supportedProtocolVersions } from '../protocol/versions.js';
import type { MemberLink } from './member-link.js';

/**
 * The virtual server's answer to the client's initialize, from the members that are up: the protocol version the
 * client asked for (each member session negotiated its own with its server), the capabilities any member has (lists
 * always announce changes: members join and leave), and the members' instructions under their names.
 */
export function initializeResult(
  server: { server: string; description?: string | undefined; version: string },
  params: Record<string, unknown>,
  links: readonly MemberLink[],
): Record<string, unknown> {
  const asked = params.protocolVersion;
  const protocolVersion = typeof asked === 'string' && supportedProtocolVersions.includes(asked) ? asked : latestProtocolVersion;
  const up = links.filter((l) => l.isUp);
  // A member not up yet may have any kind: announced, so that its list_changed on joining is heard.
  const unknown = links.some((l) => !l.isUp && !l.isAbsent);
  const has = (kind: string) => unknown || up.some((l) => l.capabilities[kind] !== undefined);
  const capabilities: Record<string, unknown> = { tools: { listChanged: true } };
  if (has('prompts')) capabilities.prompts = { listChanged: true };
  if (has('resources'))
    capabilities.resources = {
      listChanged: true,
      subscribe: up.some((l) => (l.capabilities.resources as { subscribe?: unknown } | undefined)?.subscribe === true),
    };
  if (up.some((l) => l.capabilities.logging !== undefined)) capabilities.logging = {};
  if (up.some((l) => l.capabilities.completions !== undefined)) capabilities.completions = {};
  const instructions = [
    ...(server.description ? [server.description] : []),
    ...up.flatMap((l) => {
      const text = l.initializeResult?.instructions;
      return typeof text === 'string' && text.trim() !== '' ? [`${l.connection}: ${text.trim()}`] : [];
    }),
  ].join('\n\n');
  return {
    protocolVersion,
    capabilities,
    serverInfo: { name: server.server, version: server.version },
    ...(instructions === '' ? {} : { instructions }),
  };
}
