import type { ConnectionAccess, ItemKind } from '../identity/access-policy.js';
import { ErrorCode, errorResponse, isRequest, isResponse, type JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { MessageContext, Stage, Verdict } from './stage.js';

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

/** The list results that show items, the array in the result, and the field that names each item. */
const lists: Record<string, { kind: ItemKind; field: string; key: string }> = {
  'tools/list': { kind: 'tool', field: 'tools', key: 'name' },
  'prompts/list': { kind: 'prompt', field: 'prompts', key: 'name' },
  'resources/list': { kind: 'resource', field: 'resources', key: 'uri' },
  'resources/templates/list': { kind: 'resource', field: 'resourceTemplates', key: 'uriTemplate' },
};

/**
 * Per-user access to a connection's tools, prompts and resources (access.tools, .prompts, .resources): a list
 * shows the user only what they may use, and using anything else is refused before it reaches the server.
 */
export class AuthorizeStage implements Stage {
  readonly name = 'authorize';

  constructor(private readonly access: ConnectionAccess) {}

  /** A stage only when the connection has narrower groups for some item: none, no cost. */
  static forAccess(access: ConnectionAccess): AuthorizeStage | undefined {
    return access.hasItemRules ? new AuthorizeStage(access) : undefined;
  }

  inspect(message: JsonRpcMessage, ctx: MessageContext): Verdict | undefined {
    const identity = ctx.session.identity;
    if (ctx.direction === 'toServer') {
      if (!isRequest(message)) return undefined;
      const use = message.method === 'completion/complete' ? completionUse(message.params?.ref) : uses[message.method];
      if (use === undefined) return undefined;
      const name = use.of === undefined ? message.params?.[use.param] : use.of[use.param];
      const shown = typeof name === 'string' ? name : '';
      const decision = this.access.item(identity, use.kind, shown);
      if (decision.allowed && typeof name === 'string') return undefined;
      const reason = typeof name === 'string' ? decision.reason : `${use.kind} request without a ${use.param}`;
      return {
        action: 'answer',
        reason,
        message: errorResponse(message.id, ErrorCode.Denied, `Access denied on connection '${ctx.session.connection}': ${reason}`, {
          gateway: 'portcullis',
          stage: this.name,
          [use.kind]: name ?? null,
        }),
      };
    }
    const list = ctx.request === undefined ? undefined : lists[ctx.request.method];
    if (list === undefined || !isResponse(message) || message.result === undefined) return undefined;
    const items = message.result[list.field];
    if (!Array.isArray(items)) return undefined;
    const visible = items.filter((item: unknown) => {
      const key = (item as Record<string, unknown> | null)?.[list.key];
      return typeof key === 'string' && this.access.item(identity, list.kind, key).allowed;
    });
    if (visible.length === items.length) return undefined;
    return { action: 'pass', message: { ...message, result: { ...message.result, [list.field]: visible } } };
  }
}
