import { LimitExceededError } from '../limits/limit-error.js';
import { ErrorCode } from '../protocol/jsonrpc.js';
import { RecordingUnavailableError } from '../recording/recording-unavailable.js';
import { UpstreamError } from '../upstream/upstream.js';

/** How an edge answers when a session cannot open: the HTTP status, the JSON-RPC error and extra headers. */
export interface OpenRefusal {
  status: number;
  code: number;
  message: string;
  headers: Record<string, string>;
  /** Already logged where it was decided (a limit logs once per burst): the edge does not log it again. */
  logged?: true;
}

export function openRefusal(err: unknown): OpenRefusal {
  if (err instanceof LimitExceededError) {
    return { status: 429, code: ErrorCode.RateLimited, message: err.message, headers: { 'retry-after': String(err.retryAfterSeconds) }, logged: true };
  }
  if (err instanceof RecordingUnavailableError) {
    return {
      status: 503,
      code: ErrorCode.RecordingUnavailable,
      message: `Service Unavailable: sessions cannot be recorded, so new ones are refused until the recording store recovers (${err.message})`,
      headers: { 'retry-after': '5' },
    };
  }
  const message = err instanceof UpstreamError ? err.message : 'the upstream server could not be started';
  return { status: 502, code: ErrorCode.UpstreamUnavailable, message: `Upstream unavailable: ${message}`, headers: {} };
}
