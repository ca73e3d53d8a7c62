import type { ServerResponse } from 'node:http';
import { errorResponse, type RequestId } from '../protocol/jsonrpc.js';

/** Ends a response with a JSON-RPC error body and the given HTTP status. */
export function replyError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  id: RequestId | null = null,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify(errorResponse(id, code, message));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function replyJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** An /api answer: JSON that is never cached, since it describes the state of the moment. */
export function replyApiJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  replyJson(res, status, value, { 'cache-control': 'no-store', ...headers });
}

/** Media-type check that tolerates parameters (`application/json; charset=utf-8`). */
export function hasMediaType(header: string | undefined, type: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((part) => {
    const t = part.split(';')[0]!.trim().toLowerCase();
    return t === type || t === '*/*' || (t.endsWith('/*') && type.startsWith(t.slice(0, -1)));
  });
}
