import { isNotification, isRequest, type JsonRpcMessage, type JsonRpcResponse } from '../protocol/jsonrpc.js';

interface OwnRequest {
  method: string;
  resolve(result: Record<string, unknown>): void;
  reject(err: Error): void;
}

/** The virtual upstream's own requests are under ids of this prefix: no id the virtual session routes has it. */
const ownPrefix = 'virtual-';

let ownSequence = 0;

/** Whether `message` is a member's answer to one of the virtual upstream's own requests. */
export function isOwnAnswer(message: JsonRpcMessage): message is JsonRpcResponse {
  if (isRequest(message) || isNotification(message)) return false;
  const id = (message as JsonRpcResponse).id;
  return typeof id === 'string' && id.startsWith(ownPrefix);
}

/**
 * The virtual upstream's own requests to one member (its initialize, the lists it merges), under `virtual-` ids,
 * waiting for their answers.
 */
export class OwnRequests {
  readonly #pending = new Map<string, OwnRequest>();

  constructor(
    /** The member connection's name, for the timeout's error. */
    private readonly connection: string,
    /** Sends a message to the member session now open (if any). */
    private readonly send: (message: JsonRpcMessage) => void,
  ) {}

  /** Its result; a rejection on an error answer, `failAll`, or `timeoutMs` without an answer (a late answer is then dropped). */
  request(method: string, params: Record<string, unknown> | undefined, timeoutMs?: number): Promise<Record<string, unknown>> {
    const id = `${ownPrefix}${++ownSequence}`;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#pending.delete(id);
          const reason = `member '${this.connection}' did not answer ${method} within ${timeoutMs}ms`;
          // Its answer is no longer wanted: the member is told, as a client would tell it.
          this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
          reject(new Error(reason));
        }, timeoutMs);
        timer.unref();
      }
      this.#pending.set(id, {
        method,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    });
  }

  /** The member's answer to one of them (see isOwnAnswer): settles it, unless it was given up on already. */
  answered(response: JsonRpcResponse): void {
    const id = response.id as string;
    const own = this.#pending.get(id);
    if (own === undefined) return;
    this.#pending.delete(id);
    if (response.error !== undefined) own.reject(new Error(`its ${own.method} failed: ${response.error.message}`));
    else own.resolve((response.result ?? {}) as Record<string, unknown>);
  }

  /** The member is gone: every request still waiting fails with `reason`. */
  failAll(reason: string): void {
    for (const own of this.#pending.values()) own.reject(new Error(reason));
    this.#pending.clear();
  }
}
