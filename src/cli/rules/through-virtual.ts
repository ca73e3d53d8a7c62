import type { GatewayConfig } from '../../config/schema.js';
import type { JsonRpcRequest } from '../../protocol/jsonrpc.js';
import { type NamedKind, VirtualNames } from '../../virtual/names.js';

/** A sample request as the member that serves it judges it: its connection, the request with the server's own names, and where it came from. */
export interface MemberSample {
  connection: string;
  request: JsonRpcRequest;
  virtual: { server: string; exposed(kind: NamedKind, name: string): string };
  /** The tool's or prompt's name on the virtual server, for the summary line; '' when the request names none. */
  exposedName: string;
}

const kindOf = (method: string): NamedKind | undefined => (method === 'tools/call' ? 'tool' : method === 'prompts/get' ? 'prompt' : undefined);

/**
 * A sample made through virtual server `server`: a virtual server has no rules of its own, its members' rules judge
 * their calls (with `virtual` in the facts). Without `member`, the tool or prompt named is the virtual server's (e.g.
 * `files__read_file`), routed to the member that serves it; with `member`, the request is that member's, in its own
 * names. Returns an error message naming the fix when the sample cannot be made.
 */
export function throughVirtual(config: GatewayConfig, server: string, member: string | undefined, request: JsonRpcRequest): MemberSample | string {
  const upstream = config.connections.get(server)?.upstream;
  if (upstream?.kind !== 'virtual') {
    const virtual = [...config.connections.values()].filter((c) => c.upstream.kind === 'virtual').map((c) => c.name);
    return `there is no virtual server named ${JSON.stringify(server)}; ${virtual.length === 0 ? 'the config has none' : `the config has: ${virtual.join(', ')}`}`;
  }
  const names = new VirtualNames(upstream.members);
  const kind = kindOf(request.method);
  const name = typeof request.params?.name === 'string' ? request.params.name : undefined;
  if (member !== undefined) {
    const index = upstream.members.findIndex((m) => m.connection === member);
    if (index < 0)
      return `${JSON.stringify(member)} is not a member of virtual server '${server}'; its members are: ${upstream.members.map((m) => m.connection).join(', ')}`;
    const own = names.members[index]!;
    const exposedName = kind !== undefined && name !== undefined ? own.exposedName(name) : '';
    return { connection: member, request, virtual: { server, exposed: (_kind, n) => own.exposedName(n) }, exposedName };
  }
  if (kind === undefined || name === undefined)
    return `a ${request.method} through virtual server '${server}' is judged by one member's rules: say which with --connection (its members: ${upstream.members.map((m) => m.connection).join(', ')})`;
  const route = names.route(kind, name);
  if (route === undefined)
    return `no member of virtual server '${server}' exposes a ${kind} named ${JSON.stringify(name)} (its prefixes: ${names.members.map((m) => JSON.stringify(m.prefix)).join(', ')}); give the name as the virtual server shows it, or the member's own name with --connection <member>`;
  const own = names.members[route.member]!;
  return {
    connection: own.connection,
    request: { ...request, params: { ...request.params, name: route.serverName } },
    virtual: { server, exposed: (_kind, n) => own.exposedName(n) },
    exposedName: name,
  };
}
