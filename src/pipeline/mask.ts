import { MaskingRefusedError, type Masker } from '../masking/engine.js';
import { maskMessage } from '../masking/message.js';
import { ErrorCode, errorResponse, isRequest, isResponse, type JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { MessageContext, SessionInfo, Stage, Verdict } from './stage.js';

/**
 * Inline masking: every message from the server is masked before it goes on, so neither the client nor the
 * recording ever holds what was found (the recording keeps only the original's digest). A message that cannot
 * be checked (nested too deep) does not reach the client at all: fail closed.
 */
export class MaskStage implements Stage {
  readonly name = 'mask';

  /** `maskerFor` picks the policy for a session (its connection and its caller's groups). */
  constructor(private readonly maskerFor: (session: SessionInfo) => Masker | undefined) {}

  inspect(message: JsonRpcMessage, ctx: MessageContext): Verdict | undefined {
    if (ctx.direction !== 'toClient') return undefined;
    const masker = this.maskerFor(ctx.session);
    if (masker === undefined) return undefined;
    let masked: ReturnType<typeof maskMessage>;
    try {
      masked = maskMessage(masker, message);
    } catch (err) {
      if (!(err instanceof MaskingRefusedError)) throw err;
      return refuse(message, err.message);
    }
    if (masked === undefined) return undefined;
    return { action: 'pass', message: masked.message, sensitive: true, details: { redactions: masked.redactions } };
  }
}

/** In place of a message that could not be masked: an error for a response, nothing for anything else (answered to the server if a request). */
function refuse(message: JsonRpcMessage, why: string): Verdict {
  if (isResponse(message)) {
    return {
      action: 'pass',
      sensitive: true,
      message: errorResponse(message.id, ErrorCode.Denied, `The server's answer was withheld: ${why}`, { gateway: 'portcullis', stage: 'mask' }),
      details: { withheld: why },
    };
  }
  if (isRequest(message)) {
    return { action: 'answer', reason: why, message: errorResponse(message.id, ErrorCode.Denied, `The gateway withheld this request from the client: ${why}`) };
  }
  return { action: 'answer', reason: why };
}
