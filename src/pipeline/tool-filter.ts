import { ErrorCode, errorResponse, type JsonRpcRequest, type JsonRpcResponse } from '../protocol/jsonrpc.js';
import { globToRegExp } from '../core/glob.js';
import { inspectWith, type ListKind, type MessageContext, type Stage, type StageHandlers, type Verdict } from './stage.js';

/**
 * A per-connection allow/deny list of tool names (`*` matches any run of characters). A tool that is not
 * allowed is hidden from `tools/list` and refused on `tools/call` before it reaches the server.
 */
export interface ToolFilterRules {
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
}

export class ToolFilterStage implements Stage, StageHandlers {
  readonly name = 'tool-filter';
  readonly inspect = inspectWith(this);
  readonly #allow?: RegExp[];
  readonly #deny: RegExp[];

  constructor(rules: ToolFilterRules) {
    if (rules.allow) this.#allow = rules.allow.map(globToRegExp);
    this.#deny = (rules.deny ?? []).map(globToRegExp);
  }

  /** A stage only when the connection has rules: no rules, no cost. */
  static forRules(rules: ToolFilterRules): ToolFilterStage | undefined {
    return rules.allow === undefined && (rules.deny ?? []).length === 0 ? undefined : new ToolFilterStage(rules);
  }

  allows(tool: string): boolean {
    if (this.#deny.some((r) => r.test(tool))) return false;
    return this.#allow === undefined || this.#allow.some((r) => r.test(tool));
  }

  onToolCall(request: JsonRpcRequest, tool: string | undefined, ctx: MessageContext): Verdict | undefined {
    if (tool !== undefined && this.allows(tool)) return undefined;
    const name = request.params?.name;
    const shown = tool !== undefined ? `'${tool}'` : '(no name)';
    return {
      action: 'answer',
      reason: `tool ${shown} is not allowed`,
      message: errorResponse(
        request.id,
        ErrorCode.Denied,
        `Tool ${shown} is not allowed on connection '${ctx.session.connection}' by the gateway's tool policy`,
        { gateway: 'portcullis', stage: this.name, tool: name ?? null },
      ),
    };
  }

  onList(kind: ListKind, response: JsonRpcResponse, tools: readonly unknown[]): Verdict | undefined {
    if (kind !== 'tools') return undefined;
    const visible = tools.filter((t: unknown) => {
      const name = (t as { name?: unknown } | null)?.name;
      return typeof name === 'string' && this.allows(name);
    });
    if (visible.length === tools.length) return undefined;
    return {
      action: 'pass',
      message: { ...response, result: { ...response.result, tools: visible } },
    };
  }
}
