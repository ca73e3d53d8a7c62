import type { JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { Masker, Redaction } from './engine.js';

/**
 * Masks the payload of a JSON-RPC message: a response's `result` or `error` (message and data), a request's or
 * notification's `params`. The envelope (`jsonrpc`, `id`, `method`) is never touched, so the message keeps its
 * shape. Undefined when nothing was masked.
 */
export function maskMessage(masker: Masker, message: JsonRpcMessage): { message: JsonRpcMessage; redactions: Redaction[] } | undefined {
  const m = message as unknown as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  const redactions: Redaction[] = [];
  for (const field of ['result', 'error', 'params'] as const) {
    if (m[field] === undefined) continue;
    const masked = masker.maskValue(m[field], [field]);
    if (masked.value !== m[field]) {
      (out ??= { ...m })[field] = masked.value;
      redactions.push(...masked.redactions);
    }
  }
  return out === undefined ? undefined : { message: out as unknown as JsonRpcMessage, redactions };
}
