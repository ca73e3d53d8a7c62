import { idKey, type JsonRpcRequest, type RequestId } from '../protocol/jsonrpc.js';

/**
 * Request ids mapped both ways. Requests the client sends are renumbered for the server, and requests
 * the server sends are renumbered for the client, so that ids the gateway itself injects (pings,
 * list refreshes) never collide with either side's, and a response or a cancellation finds its way back.
 */
export interface PendingRequest {
  /** The id the sender used. */
  readonly originalId: RequestId;
  /** The id it travels under on the other side. */
  readonly mappedId: number;
  /** The request as its sender sent it (stages see responses in its light). */
  readonly request: JsonRpcRequest;
  readonly startedAt: number;
  /** A server request to the client: the client requests in flight when it was made (one of them asked for it). */
  readonly madeFor?: readonly JsonRpcRequest[];
}

export class RequestIdMap {
  #next = 1;
  readonly #byMappedId = new Map<number, PendingRequest>();
  readonly #byOriginalId = new Map<string, number>();

  /** Registers an outgoing request and returns the id to send it with. */
  add(request: JsonRpcRequest, madeFor?: readonly JsonRpcRequest[]): number {
    const mapped = this.#next++;
    const pending: PendingRequest = { originalId: request.id, mappedId: mapped, request, startedAt: performance.now(), ...(madeFor ? { madeFor } : {}) };
    this.#byMappedId.set(mapped, pending);
    this.#byOriginalId.set(idKey(request.id), mapped);
    return mapped;
  }

  /** Takes the pending request a response answers; undefined when unknown (late, cancelled or forged). */
  take(mappedId: RequestId | null): PendingRequest | undefined {
    if (typeof mappedId !== 'number') return undefined;
    const pending = this.#byMappedId.get(mappedId);
    if (pending === undefined) return undefined;
    this.#byMappedId.delete(mappedId);
    this.#byOriginalId.delete(idKey(pending.originalId));
    return pending;
  }

  /** The pending request a response will answer, left in place. */
  peek(mappedId: RequestId | null): PendingRequest | undefined {
    return typeof mappedId === 'number' ? this.#byMappedId.get(mappedId) : undefined;
  }

  /** The id a still-pending request was sent with, from the id its sender used. */
  mappedIdOf(originalId: RequestId): number | undefined {
    return this.#byOriginalId.get(idKey(originalId));
  }

  /** Forgets a pending request by the id its sender used (after a cancellation). */
  forget(originalId: RequestId): PendingRequest | undefined {
    const mapped = this.#byOriginalId.get(idKey(originalId));
    return mapped === undefined ? undefined : this.take(mapped);
  }

  get size(): number {
    return this.#byMappedId.size;
  }

  /** Every pending request, oldest first; used to fail them all when the session ends. */
  drain(): PendingRequest[] {
    const all = [...this.#byMappedId.values()];
    this.#byMappedId.clear();
    this.#byOriginalId.clear();
    return all;
  }

  /** Every pending request, oldest first. */
  requests(): JsonRpcRequest[] {
    return [...this.#byMappedId.values()].map((p) => p.request);
  }

  /** The only pending request, when there is exactly one. */
  single(): PendingRequest | undefined {
    if (this.#byMappedId.size !== 1) return undefined;
    return this.#byMappedId.values().next().value;
  }
}
