import { ErrorCode, errorResponse, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';

/** What a call to a member that cannot serve it is told. */
export function memberUnavailable(connection: string, server: string, reason: string): string {
  return `member '${connection}' of virtual server '${server}' is unavailable: ${reason}`;
}

/** The error answer to a call routed to a member that cannot serve it. */
export function unavailableAnswer(id: RequestId, connection: string, server: string, reason: string): JsonRpcResponse {
  return errorResponse(id, ErrorCode.InternalError, memberUnavailable(connection, server, reason));
}
