import { idKey, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import type { MemberLink } from './member-link.js';

/**
 * The members' requests to the client (elicitation, sampling, roots), renumbered for the virtual session: two
 * members may use the same ids. The client's answer, or the member's cancellation, finds its way back.
 */
export class MemberRequests {
  /** By the id the virtual session was given. */
  readonly #byId = new Map<string, { link: MemberLink; id: RequestId }>();
  /** The same, by member and the member's own id (its cancellations name them so). */
  readonly #byMemberId = new Map<string, string>();
  #seq = 0;

  /** A member's request, under an id of the virtual session's. */
  toClient(link: MemberLink, request: JsonRpcRequest): JsonRpcRequest {
    const id = `member-${++this.#seq}`;
    this.#byId.set(id, { link, id: request.id });
    this.#byMemberId.set(`${link.index}:${idKey(request.id)}`, id);
    return { ...request, id };
  }

  /** The client's answer, under the member's own id, and the member it goes to; undefined when it answers none. */
  answered(response: JsonRpcResponse): { link: MemberLink; response: JsonRpcResponse } | undefined {
    if (typeof response.id !== 'string') return undefined;
    const asked = this.#byId.get(response.id);
    if (asked === undefined) return undefined;
    this.#byId.delete(response.id);
    this.#byMemberId.delete(`${asked.link.index}:${idKey(asked.id)}`);
    return { link: asked.link, response: { ...response, id: asked.id } };
  }

  /** A member cancelled its request: the cancellation under the id the client knows; undefined when not pending. */
  cancelled(link: MemberLink, memberId: RequestId, message: JsonRpcNotification): JsonRpcNotification | undefined {
    const key = `${link.index}:${idKey(memberId)}`;
    const id = this.#byMemberId.get(key);
    if (id === undefined) return undefined;
    this.#byMemberId.delete(key);
    this.#byId.delete(id);
    return { ...message, params: { ...message.params, requestId: id } };
  }
}
