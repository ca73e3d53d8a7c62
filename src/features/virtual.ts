import type { ConnectionConfig } from '../config/schema.js';
import type { SessionRegistryOptions } from '../session/registry.js';
import type { Upstream } from '../upstream/upstream.js';
import { version } from '../version.js';
import type { MemberSession } from '../virtual/member-session.js';
import { type MemberHealth, MemberHealthBoard } from '../virtual/member-health.js';
import { VirtualNames } from '../virtual/names.js';
import { VirtualUpstream } from '../virtual/virtual-upstream.js';
import { accessRequestsModule } from './access-requests.js';
import { pinsModule } from './pins.js';
import type { Feature, FeatureModule } from './feature.js';

export interface VirtualServersFeature extends Feature {
  /** Which members of each virtual server are up (the console and /api show it). */
  readonly health: MemberHealth;
  /** The link of a virtual server's session: a client of one member session per member, opened in-process. */
  readonly upstream: SessionRegistryOptions['createUpstream'];
}

/**
 * Virtual servers (src/virtual): on when the config has one. Each session of one gets a VirtualUpstream whose members
 * are the gateway's own sessions of the member connections, opened through the registry for the same caller (after
 * the same access check a direct session gets), so each member's whole pipeline and recording apply to every call.
 */
export const virtualServersModule: FeatureModule<VirtualServersFeature> = {
  name: 'virtual servers',
  create(ctx) {
    const servers = [...ctx.config.connections.values()].filter((c) => c.upstream.kind === 'virtual');
    if (servers.length === 0) return undefined;
    const log = ctx.log.child({ part: 'virtual-servers' });
    const health = new MemberHealthBoard(log);
    // Just-in-time access to a member counts as it does on the member's own endpoint: its session lasts as the grant does.
    const grants = ctx.feature(accessRequestsModule)?.http?.grants;
    const grantFor = (caller: Parameters<typeof ctx.mayOpen>[0], member: string) => grants?.grantFor(caller, member);
    // A member's tools/list is kept in each virtual session until its connection's pins change (kept-lists.ts).
    const pins = ctx.feature(pinsModule)?.pins;
    const pinsVersion = pins === undefined ? undefined : (member: string) => pins.version(member);
    const names = new Map<string, VirtualNames>();
    for (const c of servers) if (c.upstream.kind === 'virtual') names.set(c.name, new VirtualNames(c.upstream.members));
    const upstream = (c: ConnectionConfig, sessionLog: typeof log, sessionId: string, identity: Parameters<typeof ctx.mayOpen>[0]): Upstream => {
      if (c.upstream.kind !== 'virtual') throw new Error(`connection '${c.name}' is not a virtual server`);
      return new VirtualUpstream({
        server: c.name,
        description: c.description,
        sessionId,
        identity,
        config: c.upstream,
        names: names.get(c.name)!,
        health,
        log: sessionLog,
        version,
        ...(pinsVersion === undefined ? {} : { pinsVersion }),
        mayOpen: (member, caller) => ctx.mayOpen(caller, member) || grantFor(caller, member) !== undefined,
        open: async (member, caller, origin): Promise<MemberSession | undefined> => {
          const connection = ctx.config.connections.get(member);
          // A member the caller may not open is simply not part of their virtual server.
          if (connection === undefined) return undefined;
          const decision = ctx.access(member)?.open(caller);
          if (decision?.allowed === true) return ctx.registry().create(connection, caller, { edge: 'virtual', virtual: origin, access: decision.reason });
          const grant = grantFor(caller, member);
          if (grant === undefined) return undefined;
          const until = new Date(grant.expiresAtUs / 1000).toISOString();
          const access = `just-in-time grant ${grant.id} approved by ${grant.deciderSubject ?? 'an approver'} until ${until}`;
          return ctx.registry().create(connection, caller, { edge: 'virtual', virtual: origin, access, grant: grant.id });
        },
      });
    };
    return { health, upstream };
  },
};
