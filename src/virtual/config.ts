import { z } from 'zod';
import { connectionNamePattern, connectionNameRule, duration } from '../core/config-fields.js';
import { accessSchema } from '../identity/config.js';
import type { VirtualMemberConfig, VirtualUpstreamConfig } from '../upstream/config.js';

/**
 * The `virtualServers:` slice: named endpoints over several member connections (docs/virtual-servers.md). The checks
 * that need only one virtual server run here; those that need `connections:` too run in `checkVirtualServers`, once the
 * whole file is read.
 */

const globs = z.array(z.string().min(1, 'expected a name pattern (* matches any run of characters)'));

const selection = z
  .strictObject({
    /** Names (or URIs, for resources) matching any of these are exposed; absent: all. */
    include: globs.optional(),
    /** Names matching any of these are not, even when included. */
    exclude: globs.optional(),
  })
  .prefault({});

const memberSchema = z.strictObject({
  /** A connection of `connections:` (not another virtual server). */
  connection: z.string().regex(connectionNamePattern, connectionNameRule),
  /** Put before its tool and prompt names; default: the connection's name and the separator; "" for none. */
  prefix: z.string().optional(),
  tools: selection,
  prompts: selection,
  /** Globs on the resource URI (and on resource templates' URI templates). */
  resources: selection,
  /** The server's name → the exposed name, exactly (no prefix added); tools and prompts. */
  rename: z.record(z.string().min(1), z.string().min(1, 'expected the name to expose')).default({}),
  /** Description overrides, by the server's name (tools and prompts). */
  descriptions: z.record(z.string().min(1), z.string()).default({}),
});

function virtualServerShape() {
  return z.strictObject({
    description: z.string().optional(),
    /** Who may open the virtual server (its own groups); each member's own access still applies to every call. */
    access: accessSchema(),
    /** Between a connection's name and a tool's in the default prefix. */
    separator: z.string().min(1, 'expected a separator such as __').default('__'),
    /** A member that has not opened (or answered a list) within this is left out of that answer. */
    memberTimeout: duration('10s').refine((ms) => ms >= 100 && ms <= 300_000, 'expected from 100ms to 5m'),
    /** Its members, in the order of the merged lists. */
    members: z.array(memberSchema).min(1, 'expected at least one member: - connection: <a connection of connections:>'),
  });
}

function virtualServerSchema() {
  return virtualServerShape().superRefine(checkNames);
}

type ParsedServer = z.output<ReturnType<typeof virtualServerShape>>;
type ParsedMember = z.output<typeof memberSchema>;

function prefixOf(m: Pick<ParsedMember, 'connection' | 'prefix'>, separator: string): string {
  return m.prefix ?? `${m.connection}${separator}`;
}

/** Within one virtual server: each connection once, prefixes that cannot collide, renames onto distinct names outside every prefix. */
function checkNames(s: ParsedServer, ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  s.members.forEach((m, i) => {
    const first = seen.get(m.connection);
    if (first !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['members', i, 'connection'],
        message: `the connection '${m.connection}' is already members[${first}]: list each connection once (one member can include several kinds and names)`,
      });
    else seen.set(m.connection, i);
  });
  const prefixes = s.members.map((m) => prefixOf(m, s.separator));
  for (let i = 0; i < prefixes.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = prefixes[j]!;
      const b = prefixes[i]!;
      if (a.startsWith(b) || b.startsWith(a))
        ctx.addIssue({
          code: 'custom',
          path: ['members', i, 'prefix'],
          message: `names could collide: the prefix ${JSON.stringify(b)} and members[${j}]'s ${JSON.stringify(a)} ${a === b ? 'are equal' : 'start alike'} (an empty prefix starts every name); give each member a prefix that is not the start of another's`,
        });
    }
  }
  const targets = new Map<string, string>();
  s.members.forEach((m, i) => {
    for (const [from, to] of Object.entries(m.rename)) {
      const at = `members[${i}].rename.${from}`;
      const other = targets.get(to);
      if (other !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['members', i, 'rename', from],
          message: `names could collide: ${other} is renamed to ${JSON.stringify(to)} too; rename each onto a name of its own`,
        });
      else targets.set(to, at);
      const clash = prefixes.findIndex((p) => p !== '' && to.startsWith(p));
      if (clash !== -1)
        ctx.addIssue({
          code: 'custom',
          path: ['members', i, 'rename', from],
          message: `names could collide: ${JSON.stringify(to)} starts with members[${clash}]'s prefix ${JSON.stringify(prefixes[clash])}; rename it onto a name outside every member's prefix`,
        });
    }
  });
}

/** The `virtualServers:` key: name → virtual server, default none. */
export function virtualServersSchema() {
  return z.record(z.string().regex(connectionNamePattern, connectionNameRule), virtualServerSchema()).default({});
}

export type VirtualServerConfig = ParsedServer;

/**
 * Across slices, once the whole file is read (runs even when other keys are invalid): every member names a connection
 * of `connections:`, and no virtual server has a connection's name.
 */
export function checkVirtualServers(c: { connections?: unknown; virtualServers?: unknown }, ctx: z.RefinementCtx): void {
  const servers = c.virtualServers;
  if (servers === null || typeof servers !== 'object') return;
  const connections = new Set(c.connections !== null && typeof c.connections === 'object' ? Object.keys(c.connections) : []);
  for (const [name, server] of Object.entries(servers as Record<string, { members?: unknown } | undefined>)) {
    if (connections.has(name))
      ctx.addIssue({
        code: 'custom',
        path: ['virtualServers', name],
        message: `'${name}' is also a connection: both would be served at /mcp/${name}; rename the virtual server (or the connection)`,
      });
    const members = server?.members;
    if (!Array.isArray(members)) continue;
    members.forEach((m: { connection?: unknown } | undefined, i) => {
      const target = m?.connection;
      if (typeof target !== 'string' || connections.has(target)) return;
      const isVirtual = Object.hasOwn(servers, target);
      ctx.addIssue({
        code: 'custom',
        path: ['virtualServers', name, 'members', i, 'connection'],
        message: isVirtual
          ? `'${target}' is a virtual server: a member must be a connection of connections: (list that virtual server's members here instead)`
          : `no connection '${target}' in connections:; name one of ${[...connections].map((n) => `'${n}'`).join(', ') || 'none'} (or add it there)`,
      });
    });
  }
}

/** A parsed virtual server as the upstream of its connection (src/upstream/config.ts's kind 'virtual'). */
export function virtualUpstreamOf(s: ParsedServer): VirtualUpstreamConfig {
  const members: VirtualMemberConfig[] = s.members.map((m) => ({
    connection: m.connection,
    prefix: prefixOf(m, s.separator),
    tools: m.tools,
    prompts: m.prompts,
    resources: m.resources,
    rename: m.rename,
    descriptions: m.descriptions,
  }));
  return { kind: 'virtual', members, separator: s.separator, memberTimeoutMs: s.memberTimeout };
}
