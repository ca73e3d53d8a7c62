import { z } from 'zod';
import { ErrorCode, errorResponse, isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { MessageContext, Stage, Verdict } from './stage.js';

/**
 * What a client may let a server do, cut by policy: a connection's `clientCapabilities.deny` names capabilities the
 * server is never told of (`sampling` lets a server spend the client's model, `roots` shows it the client's folders,
 * `elicitation.url` sends a person to a URL the server chose). They are removed from `initialize` and from the
 * `clientCapabilities` a 2026-07-28 request carries in `_meta`, so a modern upstream's envelope (regenerated from the
 * session's initialize) never offers them either; a server that asks for one anyway is refused by the gateway.
 */

/** The capabilities a connection may deny: a capability, or one of its modes. */
export const deniableCapabilities = [
  'sampling',
  'sampling.tools',
  'sampling.context',
  'roots',
  'elicitation',
  'elicitation.form',
  'elicitation.url',
  'tasks',
  'experimental',
] as const;
export type DeniableCapability = (typeof deniableCapabilities)[number];

/** The config slice: `connections.<name>.clientCapabilities`. */
export function clientCapabilitiesSchema() {
  return z
    .strictObject({
      /** Client capabilities the server is never offered, e.g. [sampling, roots, elicitation.url]. */
      deny: z.array(z.enum(deniableCapabilities, { error: `expected one of ${deniableCapabilities.join(', ')}` })).default([]),
    })
    .prefault({});
}

const capabilitiesKey = 'io.modelcontextprotocol/clientCapabilities';

/** The server→client requests each denied capability forbids (elicitation modes are told apart by `params.mode`). */
function forbiddenRequest(request: JsonRpcRequest, denied: ReadonlySet<DeniableCapability>): DeniableCapability | undefined {
  switch (request.method) {
    case 'sampling/createMessage':
      return denied.has('sampling') ? 'sampling' : undefined;
    case 'roots/list':
      return denied.has('roots') ? 'roots' : undefined;
    case 'elicitation/create': {
      if (denied.has('elicitation')) return 'elicitation';
      const mode = request.params?.mode === 'url' ? 'elicitation.url' : 'elicitation.form';
      return denied.has(mode) ? mode : undefined;
    }
    default:
      return undefined;
  }
}

/** `capabilities` without the denied ones, or the same object when nothing in it is denied. */
export function withoutDenied(capabilities: unknown, denied: readonly DeniableCapability[]): unknown {
  if (capabilities === null || typeof capabilities !== 'object' || Array.isArray(capabilities)) return capabilities;
  let out = capabilities as Record<string, unknown>;
  for (const path of denied) {
    const [top, mode] = path.split('.') as [string, string | undefined];
    if (!Object.hasOwn(out, top)) continue;
    if (mode === undefined) {
      const { [top]: _removed, ...rest } = out;
      out = rest;
      continue;
    }
    const inner = out[top];
    if (inner === null || typeof inner !== 'object' || !Object.hasOwn(inner, mode)) {
      // An empty `elicitation: {}` means form only (2025-11-25): denying the form mode then denies elicitation.
      if (path === 'elicitation.form' && inner !== null && typeof inner === 'object' && Object.keys(inner).length === 0) {
        const { elicitation: _removed, ...rest } = out;
        out = rest;
      }
      continue;
    }
    const { [mode]: _removed, ...keep } = inner as Record<string, unknown>;
    // Elicitation left with no mode would read as "form only": drop it instead when form was not offered.
    out = top === 'elicitation' && Object.keys(keep).length === 0 && mode === 'form' ? withoutKey(out, top) : { ...out, [top]: keep };
  }
  return out;
}

function withoutKey(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _removed, ...rest } = o;
  return rest;
}

export class ClientCapabilitiesStage implements Stage {
  readonly name = 'client-capabilities';
  readonly #denied: readonly DeniableCapability[];
  readonly #deniedSet: ReadonlySet<DeniableCapability>;

  private constructor(denied: readonly DeniableCapability[]) {
    this.#denied = denied;
    this.#deniedSet = new Set(denied);
  }

  /** A stage only when the connection denies something: nothing denied, no cost. */
  static forConnection(config: { deny: readonly DeniableCapability[] }): ClientCapabilitiesStage | undefined {
    return config.deny.length === 0 ? undefined : new ClientCapabilitiesStage(config.deny);
  }

  inspect(message: JsonRpcMessage, ctx: MessageContext): Verdict | undefined {
    if (!isRequest(message)) return undefined;
    if (ctx.direction === 'toClient') return this.#refuseForbidden(message, ctx);
    const params = message.params;
    if (params === undefined) return undefined;
    let rewritten = params;
    if (message.method === 'initialize' && params.capabilities !== undefined) {
      const capabilities = withoutDenied(params.capabilities, this.#denied);
      if (capabilities !== params.capabilities) rewritten = { ...rewritten, capabilities };
    }
    const meta = params._meta as Record<string, unknown> | undefined;
    if (meta !== undefined && meta !== null && typeof meta === 'object' && Object.hasOwn(meta, capabilitiesKey)) {
      const capabilities = withoutDenied(meta[capabilitiesKey], this.#denied);
      if (capabilities !== meta[capabilitiesKey]) rewritten = { ...rewritten, _meta: { ...meta, [capabilitiesKey]: capabilities } };
    }
    return rewritten === params ? undefined : { action: 'pass', message: { ...message, params: rewritten }, details: { denied: this.#denied } };
  }

  /** A server asking for what it was never offered: refused by the gateway, never shown to the client. */
  #refuseForbidden(request: JsonRpcRequest, ctx: MessageContext): Verdict | undefined {
    const capability = forbiddenRequest(request, this.#deniedSet);
    if (capability === undefined) return undefined;
    return {
      action: 'answer',
      reason: `the client capability '${capability}' is denied on this connection`,
      message: errorResponse(
        request.id,
        ErrorCode.MethodNotFound,
        `${request.method} is not available: connection '${ctx.session.connection}' denies the client capability '${capability}' (clientCapabilities.deny)`,
        { gateway: 'portcullis', stage: this.name, capability },
      ),
    };
  }
}
