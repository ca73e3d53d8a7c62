import type { ServerResponse } from 'node:http';
import { ErrorCode, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import { type KeepAlive, sseFrame, sseHeaders } from './sse-writer.js';

/** Methods whose complete results are cacheable (server/utilities/caching.mdx): they carry ttlMs and cacheScope. */
export const cacheableMethods: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** The HTTP status of an error response a modern request ends with, as a 2026-07-28 server answers it. */
export function statusForError(code: number): number {
  if (code === ErrorCode.MethodNotFound) return 404;
  if (code === ErrorCode.MissingRequiredClientCapability || code === ErrorCode.HeaderMismatch || code === ErrorCode.UnsupportedProtocolVersion) return 400;
  return 200;
}

/** Ends a response with a JSON-RPC error (data included) and the status given. */
export function replyRpcError(res: ServerResponse, status: number, id: RequestId | null, code: number, message: string, data?: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The HTTP response of one modern request: JSON when the result comes first, SSE once anything precedes it (a
 * notification, a hold). Closing it before the end is the client's cancellation.
 */
export class ModernReply {
  #sse = false;
  #done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly keepAlive: KeepAlive,
  ) {}

  get done(): boolean {
    return this.#done;
  }

  /** Switches to SSE (idempotent): what comes next is a stream of events ending with the response. */
  stream(): void {
    if (this.#sse || this.#done || this.res.headersSent) return;
    this.#sse = true;
    this.res.writeHead(200, sseHeaders);
    this.res.flushHeaders();
    this.keepAlive.add(this.res);
  }

  /** One notification before the result. */
  event(text: string): void {
    if (this.#done) return;
    this.stream();
    this.res.write(sseFrame(text));
  }

  /** The response that ends the request. */
  end(response: JsonRpcResponse): void {
    if (this.#done) return;
    this.#done = true;
    const text = JSON.stringify(response);
    if (this.#sse) {
      this.keepAlive.delete(this.res);
      this.res.end(sseFrame(text));
      return;
    }
    const status = response.error === undefined ? 200 : statusForError(response.error.code);
    this.res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    this.res.end(text);
  }

  /** The stream ends without a response (the gateway is going away). */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.keepAlive.delete(this.res);
    this.res.end();
  }
}
