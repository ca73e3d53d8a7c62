import type { JsonRpcRequest } from '../protocol/jsonrpc.js';
import { xMcpHeaders } from '../protocol/x-mcp-header.js';

/**
 * The HTTP headers of a 2026-07-28 request, generated from its body (never copied from a client): the version, the
 * method, the name (tools/call, prompts/get: `params.name`; resources/read: `params.uri`) and, for a tools/call, an
 * `Mcp-Param-<Name>` per argument that the tool's definition marks with `x-mcp-header`. A value that is not plain
 * visible ASCII (or that looks like the sentinel) travels in the `=?base64?…?=` form.
 */

/** Where one `x-mcp-header` argument lives: its header name and its chain of `properties` keys. */
export interface HeaderParam {
  header: string;
  path: string[];
}

const sentinel = /^=\?base64\?.*\?=$/s;

/** A header value as sent: itself when it is plain visible ASCII without edge spaces, else the base64 sentinel. */
export function encodeHeaderValue(value: string): string {
  const plain = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !sentinel.test(value);
  return plain ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The `x-mcp-header` parameters a tool's input schema declares, or why the declaration is invalid (xMcpHeaders). */
export function headerParamsOf(inputSchema: unknown): HeaderParam[] | { invalid: string } {
  const declared = xMcpHeaders(inputSchema);
  return 'invalid' in declared ? declared : declared.map(({ header, path }) => ({ header, path }));
}

/** A header parameter's value in the arguments: string as is, integer in decimal, boolean as true/false; else none. */
function paramValue(args: unknown, path: string[]): string | undefined {
  let v: unknown = args;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return undefined;
}

/** The name a request is about, for `Mcp-Name`: undefined for methods that name nothing. */
export function nameOf(request: JsonRpcRequest): string | undefined {
  const p = request.params;
  if (request.method === 'tools/call' || request.method === 'prompts/get') return typeof p?.name === 'string' ? p.name : undefined;
  if (request.method === 'resources/read') return typeof p?.uri === 'string' ? p.uri : undefined;
  return undefined;
}

/** The headers for `request`, all from its body; `paramsOf` gives a tool's header parameters (from its tools/list entry). */
export function modernHeaders(
  request: JsonRpcRequest,
  version: string,
  paramsOf: (tool: string) => readonly HeaderParam[] | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { 'mcp-protocol-version': version, 'mcp-method': encodeHeaderValue(request.method) };
  const name = nameOf(request);
  if (name !== undefined) headers['mcp-name'] = encodeHeaderValue(name);
  if (request.method === 'tools/call' && name !== undefined) {
    for (const p of paramsOf(name) ?? []) {
      const value = paramValue(request.params?.arguments, p.path);
      if (value !== undefined) headers[`mcp-param-${p.header.toLowerCase()}`] = encodeHeaderValue(value);
    }
  }
  return headers;
}
