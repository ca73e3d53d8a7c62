import type { ConnectionAccess, ItemKind } from '../identity/access-policy.js';
import { ErrorCode, errorResponse, type JsonRpcRequest, type JsonRpcResponse } from '../protocol/jsonrpc.js';
import { inspectWith, type ListKind, type MessageContext, type Stage, type StageHandlers, type Verdict } from './stage.js';

/** The requests that use one tool, prompt or resource, and where its name is. */
const uses: Record<string, { kind: ItemKind; param: 'name' | 'uri'; of?: undefined }> = {
  'tools/call': { kind: 'tool', param: 'name' },
  'prompts/get': { kind: 'prompt', param: 'name' },
  'resources/read': { kind: 'resource', param: 'uri' },
  'resources/subscribe': { kind: 'resource', param: 'uri' },
  'resources/unsubscribe': { kind: 'resource', param: 'uri' },
};

/**
 * What a completion request is about: the prompt (`ref/prompt`, by name) or resource template (`ref/resource`, by
 * URI) whose arguments it completes. Completions reveal what an item would offer, so they need the same groups.
 */
function completionUse(ref: unknown): { kind: ItemKind; param: 'name' | 'uri'; of: Record<string, unknown> } {
  const r = (ref !== null && typeof ref === 'object' ? ref : {}) as Record<string, unknown>;
  if (r.type === 'ref/resource') return { kind: 'resource', param: 'uri', of: r };
  // A prompt reference, or one of a kind not known here: checked as a prompt by its name (fail closed: no name, no answer).
  return { kind: 'prompt', param: 'name', of: r };
}

/** The kind of item each list shows, and the field that names an item. */
const lists: Record<ListKind, { kind: ItemKind; key: string }> = {
  tools: { kind: 'tool', key: 'name' },
  prompts: { kind: 'prompt', key: 'name' },
  resources: { kind: 'resource', key: 'uri' },
  resourceTemplates: { kind: 'resource', key: 'uriTemplate' },
};

/**
 * Per-user access to a connection's tools, prompts and resources (access.tools, .prompts, .resources): a list
 * shows the user only what they may use, and using anything else is refused before it reaches the server.
 */
export class AuthorizeStage implements Stage, StageHandlers {
  readonly name = 'authorize';
  readonly inspect = inspectWith(this);

  constructor(private readonly access: ConnectionAccess) {}

  /** A stage only when the connection has narrower groups for some item: none, no cost. */
  static forAccess(access: ConnectionAccess): AuthorizeStage | undefined {
    return access.hasItemRules ? new AuthorizeStage(access) : undefined;
  }

  /** A request that uses a tool, prompt or resource (or completes one's arguments) needs the item's groups. */
  onRequest(request: JsonRpcRequest, ctx: MessageContext): Verdict | undefined {
    const use = request.method === 'completion/complete' ? completionUse(request.params?.ref) : uses[request.method];
    if (use === undefined) return undefined;
    const name = use.of === undefined ? request.params?.[use.param] : use.of[use.param];
    const shown = typeof name === 'string' ? name : '';
    const decision = this.access.item(ctx.session.identity, use.kind, shown);
    if (decision.allowed && typeof name === 'string') return undefined;
    const reason = typeof name === 'string' ? decision.reason : `${use.kind} request without a ${use.param}`;
    return {
      action: 'answer',
      reason,
      message: errorResponse(request.id, ErrorCode.Denied, `Access denied on connection '${ctx.session.connection}': ${reason}`, {
        gateway: 'portcullis',
        stage: this.name,
        [use.kind]: name ?? null,
      }),
    };
  }

  /** A list shows the caller only the items they may use. */
  onList(kind: ListKind, response: JsonRpcResponse, items: readonly unknown[], ctx: MessageContext): Verdict | undefined {
    const list = lists[kind];
    const visible = items.filter((item: unknown) => {
      const key = (item as Record<string, unknown> | null)?.[list.key];
      return typeof key === 'string' && this.access.item(ctx.session.identity, list.kind, key).allowed;
    });
    if (visible.length === items.length) return undefined;
    return { action: 'pass', message: { ...response, result: { ...response.result, [kind]: visible } } };
  }
}
