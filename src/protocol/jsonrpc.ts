import { maxJsonDepth, nestsDeeperThan } from './json-depth.js';

/**
 * JSON-RPC 2.0 as MCP uses it: the one shape every part of the data path speaks.
 * Validation here is structural and cheap (no schema library on the hot path): the gateway relays
 * methods it does not know, so it checks only what JSON-RPC itself requires.
 */

export type RequestId = string | number;

export interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: RequestId | null;
  result?: Record<string, unknown>;
  error?: JsonRpcError;
}

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/**
 * Standard, MCP and gateway error codes. The gateway's own codes sit outside -32768..-32000, which JSON-RPC and MCP
 * reserve (MCP 2026-07-28 forbids new codes in -32000..-32019 and keeps -32020..-32099 for its own): -31xxx, with the
 * last digits of the codes they replace. SessionNotFound keeps -32001, the code the SDKs' legacy servers send.
 */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** MCP 2026-07-28: an HTTP header disagrees with the body it mirrors. */
  HeaderMismatch: -32020,
  /** MCP 2026-07-28: the request needs a client capability its `_meta` did not declare. */
  MissingRequiredClientCapability: -32021,
  /** MCP 2026-07-28: the protocol version is not one the receiver implements; `data.supported` lists those it does. */
  UnsupportedProtocolVersion: -32022,
  /** The upstream server is unreachable, failed, or closed the session. */
  UpstreamUnavailable: -31000,
  /** The session is unknown or has ended. */
  SessionNotFound: -32001,
  /** A message exceeded the configured size limit. */
  MessageTooLarge: -31002,
  /** A pipeline stage refused the message (policy). */
  Denied: -31003,
  /** The message could not be recorded, so it was not forwarded (write-ahead recording fails closed). */
  RecordingUnavailable: -31004,
  /** The request carried no acceptable credentials (HTTP 401), or the identity may not use the connection (403 uses Denied). */
  Unauthorized: -31005,
  /** A limit refused the request (limits: rate, requests in flight, sessions); `data.retryAfterSeconds` says when to retry. Mirrors HTTP 429. */
  RateLimited: -31029,
  /** The client did not read what the server sent fast enough (limits.clientBacklog, limits.slowClientTimeout). */
  ClientTooSlow: -31010,
} as const;

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m && m.id !== undefined;
}

export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m && m.id !== undefined);
}

export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m) && ('result' in m || 'error' in m);
}

export function errorResponse(id: RequestId | null, code: number, message: string, data?: unknown): JsonRpcResponse {
  const error: JsonRpcError = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: '2.0', id, error };
}

/** A key for maps of request ids: 1 and "1" are different ids. */
export function idKey(id: RequestId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

export class InvalidMessageError extends Error {
  constructor(
    message: string,
    readonly code: number = ErrorCode.InvalidRequest,
    /** The id of the offending message when it could be read, so the error can answer it. */
    readonly id: RequestId | null = null,
  ) {
    super(message);
    this.name = 'InvalidMessageError';
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isValidId(v: unknown): v is RequestId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** Checks one decoded value is a JSON-RPC 2.0 message; throws InvalidMessageError saying what is wrong. */
export function toMessage(value: unknown): JsonRpcMessage {
  if (!isPlainObject(value)) throw new InvalidMessageError('a JSON-RPC message must be a JSON object');
  const id = isValidId(value.id) ? value.id : null;
  if (value.jsonrpc !== '2.0') throw new InvalidMessageError('"jsonrpc" must be "2.0"', ErrorCode.InvalidRequest, id);
  if ('id' in value && value.id !== undefined && !isValidId(value.id) && !(value.id === null && !('method' in value))) {
    throw new InvalidMessageError('"id" must be a string or a number');
  }
  if ('method' in value) {
    if (typeof value.method !== 'string' || value.method.length === 0) {
      throw new InvalidMessageError('"method" must be a non-empty string', ErrorCode.InvalidRequest, id);
    }
    if (value.params !== undefined && !isPlainObject(value.params)) {
      throw new InvalidMessageError('"params" must be an object', ErrorCode.InvalidRequest, id);
    }
    return value as unknown as JsonRpcMessage;
  }
  const hasResult = 'result' in value;
  const hasError = 'error' in value;
  if (hasResult === hasError) {
    throw new InvalidMessageError('a message needs "method", or exactly one of "result" and "error"', ErrorCode.InvalidRequest, id);
  }
  if (!('id' in value)) throw new InvalidMessageError('a response needs an "id"');
  if (hasError) {
    const err = value.error;
    if (!isPlainObject(err) || typeof err.code !== 'number' || typeof err.message !== 'string') {
      throw new InvalidMessageError('"error" must be an object with a numeric "code" and a string "message"', ErrorCode.InvalidRequest, id);
    }
  } else if (!isPlainObject(value.result)) {
    throw new InvalidMessageError('"result" must be an object', ErrorCode.InvalidRequest, id);
  }
  return value as unknown as JsonRpcMessage;
}

/**
 * The exact text of each element of a JSON array, as written (whitespace inside an element kept), so that
 * what is recorded of a batch is byte for byte what the sender sent. `text` must already be valid JSON whose
 * top level is an array.
 */
export function splitJsonArray(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      if (depth === 1 && start < 0) start = i;
    } else if (c === 0x5b || c === 0x7b) {
      if (depth === 1 && start < 0) start = i;
      depth++;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0 && start >= 0) {
        out.push(text.slice(start, i).trimEnd());
        start = -1;
      }
    } else if (c === 0x2c && depth === 1) {
      out.push(text.slice(start, i).trimEnd());
      start = -1;
    } else if (depth === 1 && start < 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      start = i;
    }
  }
  return out;
}

/** Messages with the exact text each was sent as. */
export interface ParsedBody {
  messages: JsonRpcMessage[];
  texts: string[];
  batch: boolean;
}

/**
 * Parses a request body: one message or a batch array (2025-03-26 allowed batches; real clients still send them).
 * Throws InvalidMessageError with ParseError for text that is not JSON.
 */
export function parseBody(text: string): ParsedBody {
  const value = parseJson(text, 'the body');
  if (Array.isArray(value)) {
    if (value.length === 0) throw new InvalidMessageError('a batch must contain at least one message');
    return { messages: value.map(toMessage), texts: splitJsonArray(text), batch: true };
  }
  return { messages: [toMessage(value)], texts: [text], batch: false };
}

/**
 * A message nested deeper than maxJsonDepth. `id` is set when it is a response (so the request it answers can be
 * failed instead of waiting forever); a request's id is the sender's, which the receiver may not know.
 */
export class NestedTooDeepError extends InvalidMessageError {}

/** The id of a response nested too deep, read from the top level only (JSON.parse itself takes any depth). */
function responseIdOf(text: string): RequestId | null {
  try {
    const value: unknown = JSON.parse(text);
    return isPlainObject(value) && !('method' in value) && isValidId(value.id) ? value.id : null;
  } catch {
    return null;
  }
}

/** JSON.parse, refusing (InvalidMessageError) text that is not JSON or nests deeper than maxJsonDepth. */
function parseJson(text: string, what: string): unknown {
  // Before parsing: what parses fine can still overflow the stack of whatever walks it next.
  if (nestsDeeperThan(text)) {
    const message = `${what} nests arrays and objects more than ${maxJsonDepth} levels deep; the gateway does not process such messages`;
    throw new NestedTooDeepError(message, ErrorCode.InvalidRequest, responseIdOf(text));
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidMessageError(`${what} is not valid JSON: ${(err as Error).message}`, ErrorCode.ParseError);
  }
}

/** Parses one message's JSON text (a stdio line, an SSE event, a tunnel frame); throws InvalidMessageError saying why not. */
export function parseMessage(text: string): JsonRpcMessage {
  return toMessage(parseJson(text, 'the message'));
}

/** Parses the JSON text of a body or an SSE event that may hold one message or a batch; throws InvalidMessageError when it is too deep or not JSON. */
export function parseJsonText(text: string): unknown {
  return parseJson(text, 'the message');
}
