import type { RequestId } from '../protocol/jsonrpc.js';
import { type XMcpHeader, xMcpHeaders } from '../protocol/x-mcp-header.js';
import { decodeHeaderValue, type HeaderValue, hasInvalidCharacters, mismatch, type Refusal } from './request-metadata.js';

/**
 * `Mcp-Param-{Name}` headers (basic/transports/streamable-http.mdx, "Custom Headers from Tool Parameters"): a tool's
 * inputSchema may mark primitive arguments with `x-mcp-header`, and a 2026-07-28 client mirrors their values into
 * headers. The gateway checks each against the argument, reading the declarations from the tool definition it
 * trusts (the pinned one), never from the request.
 */

export type ParamHeader = XMcpHeader;

/** The `x-mcp-header` declarations of a trusted tool definition, or why they make it invalid (xMcpHeaders). */
export function paramHeaders(inputSchema: unknown): ParamHeader[] | { invalid: string } {
  return xMcpHeaders(inputSchema);
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function asHeaderText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value))) return String(value);
  return undefined;
}

/** Each declared argument present in the body must come with its header, equal to it (numbers compared as numbers). */
export function checkParamHeaders(
  declared: readonly ParamHeader[],
  args: unknown,
  headers: Map<string, HeaderValue>,
  id: RequestId | null,
): Refusal | undefined {
  for (const d of declared) {
    const body = valueAt(args, d.path);
    if (body === undefined || body === null) continue;
    const text = asHeaderText(body);
    if (text === undefined) continue;
    const headerName = `Mcp-Param-${d.header}`;
    const at = d.path.join('.');
    // Neither value is repeated in the answer (nor so in the recording or the log): an argument may be a secret.
    const header = headers.get(headerName.toLowerCase());
    if (header === undefined) return mismatch(`the body carries ${at} but the ${headerName} header is absent`, id, headerName, at);
    if (header.repeated) return mismatch(`the ${headerName} header appears more than once`, id, headerName, at);
    if (hasInvalidCharacters(header.value))
      return mismatch(`the ${headerName} header carries characters a header value may not hold (base64-encode them)`, id, headerName, at);
    const decoded = decodeHeaderValue(header.value);
    if (decoded === undefined) return mismatch(`the ${headerName} header carries an invalid Base64 sentinel value`, id, headerName, at);
    const numeric = d.type === 'integer' && typeof body === 'number' && /^-?\d+(\.\d+)?$/.test(decoded);
    if (numeric ? Number(decoded) !== body : decoded !== text) return mismatch(`the body's ${at} and the ${headerName} header differ`, id, headerName, at);
  }
  return undefined;
}
