import { ErrorCode, type JsonRpcRequest, type JsonRpcResponse } from '../protocol/jsonrpc.js';

/**
 * The legacy shim's rules: a 2026-07-28 server's `input_required` result, seen by a 2025-era client, becomes real
 * server→client requests (elicitation, sampling, roots), but only those the client declared in initialize; the
 * answers go back in a retry of the original request with the server's `requestState`, which never leaves the gateway.
 */

/** How many input rounds one request may take before the gateway gives up on it. */
export const maxInputRounds = 8;

/** One embedded request of an `input_required` result. */
export interface InputRequest {
  key: string;
  method: string;
  params: Record<string, unknown>;
}

/** What an `input_required` result asks for. */
export interface InputRound {
  requests: InputRequest[];
  requestState?: string;
}

type Caps = Record<string, unknown> | undefined;

export function isInputRequired(result: unknown): boolean {
  return result !== null && typeof result === 'object' && (result as { resultType?: unknown }).resultType === 'input_required';
}

/** The round an `input_required` result describes, or why it is malformed. */
export function readInputRequired(result: Record<string, unknown>): InputRound | { invalid: string } {
  const { inputRequests, requestState } = result;
  if (requestState !== undefined && typeof requestState !== 'string') return { invalid: 'its requestState is not a string' };
  if (inputRequests === undefined && requestState === undefined) return { invalid: 'it has neither inputRequests nor requestState' };
  if (inputRequests !== undefined && (inputRequests === null || typeof inputRequests !== 'object' || Array.isArray(inputRequests)))
    return { invalid: 'its inputRequests is not an object' };
  const requests: InputRequest[] = [];
  for (const [key, r] of Object.entries((inputRequests ?? {}) as Record<string, unknown>)) {
    const req = r as { method?: unknown; params?: unknown } | null;
    if (req === null || typeof req !== 'object' || typeof req.method !== 'string') return { invalid: `its input request ${JSON.stringify(key)} has no method` };
    const params = req.params ?? {};
    if (params === null || typeof params !== 'object' || Array.isArray(params))
      return { invalid: `its input request ${JSON.stringify(key)} has invalid params` };
    requests.push({ key, method: req.method, params: params as Record<string, unknown> });
  }
  return requestState === undefined ? { requests } : { requests, requestState };
}

/**
 * Why the client cannot be asked `r` (it did not declare the capability in initialize, or the method is not one a
 * server may ask); undefined when it can.
 */
export function cannotAsk(r: InputRequest, capabilities: Caps): string | undefined {
  const caps = capabilities ?? {};
  const has = (name: string) => caps[name] !== undefined && caps[name] !== null;
  switch (r.method) {
    case 'elicitation/create': {
      if (!has('elicitation')) return 'elicitation (the client did not declare the elicitation capability)';
      const mode = r.params.mode ?? 'form';
      const elicitation = caps.elicitation as Record<string, unknown>;
      // 2025-06-18 clients declare `elicitation: {}` (form only); 2025-11-25 ones name the modes.
      const modes = Object.keys(elicitation);
      if (mode === 'url' && elicitation.url === undefined) return 'URL elicitation (the client did not declare elicitation.url)';
      if (mode === 'form' && modes.length > 0 && elicitation.form === undefined) return 'form elicitation (the client did not declare elicitation.form)';
      return undefined;
    }
    case 'sampling/createMessage':
      return has('sampling') ? undefined : 'sampling (the client did not declare the sampling capability)';
    case 'roots/list':
      return has('roots') ? undefined : 'roots (the client did not declare the roots capability)';
    default:
      return `${JSON.stringify(r.method.slice(0, 60))}, which is not a request a server may make`;
  }
}

/** The error the client gets when a round asks for what it cannot give. */
export function cannotAskError(id: JsonRpcRequest['id'], what: string): JsonRpcResponse {
  return {
    jsonrpc: '2.0',
    id,
    error: {
      code: ErrorCode.MissingRequiredClientCapability,
      message: `The server needs input this client cannot give: ${what}`,
    },
  };
}

/**
 * The params of the retry: the original ones with the round's answers and the server's state (the client's own
 * `inputResponses`/`requestState`, if it sent any, never reach the server: only the gateway's do).
 */
export function retryParams(params: Record<string, unknown>, responses: Record<string, unknown>, requestState: string | undefined): Record<string, unknown> {
  const { inputResponses: _r, requestState: _s, ...rest } = params;
  return {
    ...rest,
    ...(Object.keys(responses).length > 0 ? { inputResponses: responses } : {}),
    ...(requestState === undefined ? {} : { requestState }),
  };
}

/** A client request waiting for the client's answers to one input round. */
export class PendingRound {
  readonly #waiting = new Map<string, string>();
  readonly responses: Record<string, unknown> = {};

  constructor(
    /** The request as it is retried (envelope and params as first sent). */
    readonly request: JsonRpcRequest,
    readonly round: number,
    readonly requestState: string | undefined,
  ) {}

  /** The gateway's id for the request asking `key`. */
  asks(gatewayId: string, key: string): void {
    this.#waiting.set(gatewayId, key);
  }

  /** The ids of the questions still open. */
  get open(): string[] {
    return [...this.#waiting.keys()];
  }

  /** The client answered `gatewayId`: true once every question of the round is answered. */
  answer(gatewayId: string, result: unknown): boolean {
    const key = this.#waiting.get(gatewayId);
    if (key !== undefined) {
      this.responses[key] = result;
      this.#waiting.delete(gatewayId);
    }
    return this.#waiting.size === 0;
  }
}
