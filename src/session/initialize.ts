import type { JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { NegotiatedFields } from '../store/types.js';

/**
 * What the answer to a session's initialize means for it: what client and server agreed (recorded, and the
 * session learns it), or why the session cannot go on (the server, or a stage, refused it: the session then ends
 * once the client has the error, stopping its server, instead of holding a process no request can use).
 */
export function initializeOutcome(request: JsonRpcRequest, response: JsonRpcResponse): { agreed: NegotiatedFields } | { failed: string } {
  if (response.error !== undefined) return { failed: `initialize failed: ${String(response.error.message).slice(0, 200)}` };
  const result = response.result as { protocolVersion?: unknown; serverInfo?: unknown } | undefined;
  return {
    agreed: {
      clientInfo: request.params?.clientInfo ?? null,
      serverInfo: result?.serverInfo ?? null,
      protocolVersion: typeof result?.protocolVersion === 'string' ? result.protocolVersion : null,
    },
  };
}
