import type { PinCheck, ToolPins } from '../pins/tool-pins.js';
import {
  ErrorCode,
  errorResponse,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../protocol/jsonrpc.js';
import type { Identity } from '../core/identity.js';
import type { MessageContext, SessionInfo, Stage, Verdict } from './stage.js';

export interface ToolPinStageOptions {
  connection: string;
  pins: ToolPins;
  /** Whether the caller may open another connection (to report a tool name two of their connections offer). */
  mayOpen: (identity: Identity, connection: string) => boolean;
}

/** How many pages of tools the gateway reads on its own (after list_changed, or to pin a paginated list first). */
const maxPages = 20;

/**
 * Tool pinning in the data path, as two stages of one connection. The `calls` stage refuses a call to a quarantined
 * tool; it sits with the access checks, before guardrails, so a quarantined call never waits for a review. The
 * `lists` stage checks every tools/list result against the pins (first sight pins them) and hides changed or new
 * definitions; it sits next to the server, after masking in the list, so it pins what the server sent, not what
 * masking made of it. A `notifications/tools/list_changed` makes the gateway read the list itself, so a change is
 * caught even when the client does not ask again. A tool name that another connection the caller may open also
 * offers is reported.
 */
export class ToolPinStage implements Stage {
  readonly name = 'tool-pins';

  constructor(
    private readonly o: ToolPinStageOptions,
    private readonly role: 'calls' | 'lists',
  ) {}

  inspect(message: JsonRpcMessage, ctx: MessageContext): Verdict | undefined | Promise<Verdict | undefined> {
    if (this.role === 'calls') {
      if (ctx.direction !== 'toServer' || !isRequest(message) || message.method !== 'tools/call') return undefined;
      const tool = message.params?.name;
      if (typeof tool !== 'string') return undefined;
      const quarantined = this.o.pins.isQuarantined(this.o.connection, tool);
      if (quarantined === undefined) return this.o.pins.load(this.o.connection).then(() => this.#refuseQuarantined(message, tool));
      return quarantined ? this.#refuseQuarantined(message, tool) : undefined;
    }
    if (ctx.direction !== 'toClient') return undefined;
    if (isNotification(message) && message.method === 'notifications/tools/list_changed') {
      return this.#relist(ctx.session).then((checked) =>
        checked === undefined || checked.changes.length === 0
          ? undefined
          : { action: 'pass', details: { relisted: true, changes: checked.changes, quarantined: checked.quarantined } },
      );
    }
    if (ctx.request?.method !== 'tools/list' || !isResponse(message) || !Array.isArray(message.result?.tools)) return undefined;
    const complete = ctx.request.params?.cursor === undefined && message.result.nextCursor === undefined;
    return this.#checkList(message, complete, ctx.session);
  }

  async #checkList(message: JsonRpcResponse, complete: boolean, session: SessionInfo): Promise<Verdict | undefined> {
    if (!complete) {
      // A connection is pinned from its whole list, not from one page of it.
      if (this.o.pins.isQuarantined(this.o.connection, '') === undefined) await this.o.pins.load(this.o.connection);
      if (!this.o.pins.hasPins(this.o.connection)) await this.#relist(session);
    }
    const checked = await this.o.pins.check(this.o.connection, message.result!.tools as unknown[], complete);
    return this.#shown(message, checked, session.identity);
  }

  #refuseQuarantined(request: JsonRpcRequest, tool: string): Verdict | undefined {
    if (!this.o.pins.isQuarantined(this.o.connection, tool)) return undefined;
    // The reasons are not repeated to the client: they quote the suspicious text, which is meant for the model.
    const text = `Tool '${tool}' on connection '${this.o.connection}' is quarantined: its definition changed since it was approved, is new, or looks suspicious, and an admin must approve it first, or its server lists the name twice, until it lists it once (portcullis pins show|diff|approve ${this.o.connection} ${tool})`;
    return {
      action: 'answer',
      reason: `quarantined tool ${tool}`,
      details: { tool, quarantined: true },
      message: errorResponse(request.id, ErrorCode.Denied, text, { gateway: 'portcullis', stage: this.name, tool }),
    };
  }

  /** The list as the client may see it: quarantined tools left out; the changes and shadowed names reported. */
  #shown(message: JsonRpcResponse, checked: PinCheck, identity: Identity): Verdict | undefined {
    const shadowed = (this.o.pins.duplicateNames === 'allow' ? [] : checked.visible)
      .map((t) => (t as { name?: unknown }).name)
      .filter((n): n is string => typeof n === 'string')
      .map((tool) => ({ tool, alsoOn: this.o.pins.alsoOfferedBy(this.o.connection, tool).filter((c) => this.o.mayOpen(identity, c)) }))
      .filter((s) => s.alsoOn.length > 0);
    for (const s of shadowed) this.o.pins.reportShadowed(this.o.connection, s.tool, s.alsoOn);
    const hidden = checked.visible.length < (message.result!.tools as unknown[]).length;
    if (checked.changes.length === 0 && shadowed.length === 0 && !hidden) return undefined;
    const details = { changes: checked.changes, quarantined: checked.quarantined, ...(shadowed.length > 0 ? { shadowed } : {}) };
    if (!hidden) return { action: 'pass', details };
    return { action: 'pass', details, message: { ...message, result: { ...message.result, tools: checked.visible } } };
  }

  /** Reads the whole list on the gateway's behalf (pinning it as any list). */
  async #relist(session: SessionInfo): Promise<PinCheck | undefined> {
    const tools: unknown[] = [];
    let cursor: unknown;
    for (let page = 0; page < maxPages; page++) {
      let result: Record<string, unknown>;
      try {
        result = await session.requestUpstream('tools/list', cursor === undefined ? {} : { cursor });
      } catch {
        return undefined;
      }
      if (Array.isArray(result.tools)) tools.push(...(result.tools as unknown[]));
      cursor = result.nextCursor;
      if (typeof cursor !== 'string') break;
    }
    return this.o.pins.check(this.o.connection, tools, typeof cursor !== 'string');
  }
}
