import type { JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.js';

export interface GatewayRequestHooks {
  /** Sends the request to the server (recorded like any other message). */
  send(request: JsonRpcRequest): void;
  /** The server answered one of them (`text`: the response as received); called before its promise settles. */
  answered(id: string, text: string): void;
}

interface Pending {
  resolve: (result: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Requests the gateway itself sends the server on a session (a stage that must see the current tool list). Their ids
 * are strings, which never collide with the renumbered client requests' numbers; their answers never reach the client.
 */
export class GatewayRequests {
  readonly #pending = new Map<string, Pending>();
  #seq = 0;

  constructor(
    private readonly hooks: GatewayRequestHooks,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Resolves with the result; rejects on an error response, a timeout, or the session's end. */
  request(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = `portcullis-${++this.#seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`the server did not answer the gateway's ${method} within ${this.timeoutMs / 1000}s`));
      }, this.timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      this.hooks.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Settles the gateway's request a server response answers; false when the response answers none of them. */
  settle(response: JsonRpcResponse, text: string): boolean {
    if (typeof response.id !== 'string' || this.#pending.size === 0) return false;
    const own = this.#pending.get(response.id);
    if (own === undefined) return false;
    this.#pending.delete(response.id);
    clearTimeout(own.timer);
    this.hooks.answered(response.id, text);
    if (response.error !== undefined) own.reject(new Error(`the server refused the gateway's request: ${response.error.message}`));
    else own.resolve((response.result ?? {}) as Record<string, unknown>);
    return true;
  }

  /** The session ends: every pending request rejects. */
  close(reason: string): void {
    for (const own of this.#pending.values()) {
      clearTimeout(own.timer);
      own.reject(new Error(`session ended: ${reason}`));
    }
    this.#pending.clear();
  }
}
