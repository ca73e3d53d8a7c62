import type { JsonRpcMessage, JsonRpcRequest } from '../protocol/jsonrpc.js';
import { digestOf } from '../recording/chain.js';
import type { MaskingConfig } from './config.js';
import { MaskingRefusedError } from './engine.js';
import { maskMessage } from './message.js';
import { maskerFor } from './policy.js';

/** Masks a client message's JSON text for the recording (the server gets the original): `masking.recordArguments`. */
export function recordingRedactor(masking: MaskingConfig): (text: string) => { text: string; redactions: unknown[] } | undefined {
  const masker = maskerFor({ ...masking, enabled: true });
  return (text) => {
    let message: JsonRpcMessage;
    try {
      message = JSON.parse(text) as JsonRpcMessage;
    } catch {
      return undefined;
    }
    try {
      const masked = maskMessage(masker, message);
      return masked === undefined ? undefined : { text: JSON.stringify(masked.message), redactions: masked.redactions };
    } catch (err) {
      if (!(err instanceof MaskingRefusedError)) throw err;
      return { text: JSON.stringify({ withheld: err.message, digest: digestOf(text) }), redactions: [] };
    }
  };
}

/** What approvers are shown of a held call's params: what the recording keeps (client-argument masking applied). */
export function paramsForReview(masking: MaskingConfig): (request: JsonRpcRequest) => string {
  const redact = masking.recordArguments ? recordingRedactor(masking) : undefined;
  return (request) => {
    const masked = redact?.(JSON.stringify(request));
    if (masked === undefined) return JSON.stringify(request.params ?? {});
    return JSON.stringify((JSON.parse(masked.text) as { params?: unknown }).params ?? { withheld: 'the params could not be masked, so they are not shown' });
  };
}
