import type { IncomingMessage } from 'node:http';
import { ErrorCode, InvalidMessageError, parseJsonText } from '../protocol/jsonrpc.js';
import { hasMediaType } from './http-reply.js';
import { classifyPost, type EraVerdict, type HeaderValue, metadataHeaders } from './request-metadata.js';

/**
 * The era of a request at `/mcp/<connection>`, decided per request after authentication. Only a POST without
 * `Mcp-Session-Id` and with a JSON body can be modern; GET, DELETE, a session id, or another content type go to the
 * legacy edge untouched (which answers them as today). For the rest the body decides (request-metadata.ts).
 */
export function mayBeModern(req: IncomingMessage): boolean {
  return req.method === 'POST' && req.headers['mcp-session-id'] === undefined && hasMediaType(req.headers['content-type'], 'application/json');
}

export type BodyEra = EraVerdict & { headers: Map<string, HeaderValue> };

/** The era of a POST from its body text; a body that is not JSON is refused as a 2026-07-28 server refuses it. */
export function eraOfBody(req: IncomingMessage, text: string): BodyEra {
  const headers = metadataHeaders(req);
  let body: unknown;
  try {
    body = parseJsonText(text);
  } catch (err) {
    const code = err instanceof InvalidMessageError ? err.code : ErrorCode.ParseError;
    return {
      era: 'refused',
      status: 400,
      code,
      message: `${code === ErrorCode.ParseError ? 'Parse error' : 'Invalid Request'}: ${(err as Error).message}`,
      id: null,
      headers,
    };
  }
  return { ...classifyPost(body, headers), headers };
}
