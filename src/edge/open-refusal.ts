import { ErrorCode } from '../protocol/jsonrpc.js';
import { RecordingUnavailableError } from '../recording/recorder.js';
import { UpstreamError } from '../upstream/upstream.js';

/** How an edge answers when a session cannot open: the HTTP status, the JSON-RPC error and extra headers. */
export interface OpenRefusal {
  status: number;
  code: number;
  message: string;
  headers: Record<string, string>;
}

export function openRefusal(err: unknown): OpenRefusal {
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
