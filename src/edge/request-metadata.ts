import type { IncomingMessage } from 'node:http';
import { ErrorCode, type JsonRpcNotification, type JsonRpcRequest, type RequestId } from '../protocol/jsonrpc.js';
import { envelopeIssues, envelopeVersion, hasEnvelopeClaim, isModernVersion, metaOf, modernVersions, protocolVersionKey } from '../protocol/envelope.js';

/**
 * The era of a request at `/mcp/<connection>` and the MCP 2026-07-28 checks of its metadata headers against its body
 * (basic/transports/streamable-http.mdx, "Request Metadata"). The body decides; the headers are only checked against
 * it, so that nothing in front of the gateway that routes or filters on a header can be told one thing while the
 * server is asked another.
 */

/** A request refused before it reaches any session: the HTTP status, the JSON-RPC error, and a short reason for the recording. */
export interface Refusal {
  era: 'refused';
  status: number;
  code: number;
  message: string;
  data?: unknown;
  /** The request's id when it could be read. */
  id: RequestId | null;
}

export type EraVerdict = { era: 'legacy' } | { era: 'modern'; message: JsonRpcRequest | JsonRpcNotification; version: string | undefined } | Refusal;

/** One metadata header as the client sent it: its value (repeats joined as node joins them), and whether it was repeated. */
export interface HeaderValue {
  value: string;
  repeated: boolean;
}

/** The MCP metadata headers of a request: MCP-Protocol-Version, Mcp-Method, Mcp-Name and every Mcp-Param-*, by lower-case name. */
export function metadataHeaders(req: IncomingMessage): Map<string, HeaderValue> {
  const out = new Map<string, HeaderValue>();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name !== 'mcp-protocol-version' && name !== 'mcp-method' && name !== 'mcp-name' && !name.startsWith('mcp-param-')) continue;
    const value = raw[i + 1]!.trim();
    const seen = out.get(name);
    out.set(name, seen === undefined ? { value, repeated: false } : { value: `${seen.value}, ${value}`, repeated: true });
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function idOf(body: unknown): RequestId | null {
  if (!isPlainObject(body)) return null;
  const id = body.id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}

function refusal(status: number, code: number, message: string, id: RequestId | null, data?: unknown): Refusal {
  return { era: 'refused', status, code, message, id, ...(data === undefined ? {} : { data }) };
}

export function mismatch(message: string, id: RequestId | null, header: string, body: string): Refusal {
  return refusal(400, ErrorCode.HeaderMismatch, `Bad Request: the request headers and body disagree: ${message}`, id, { mismatch: { header, body } });
}

function invalidRequest(message: string, id: RequestId | null = null): Refusal {
  return refusal(400, ErrorCode.InvalidRequest, `Bad Request: ${message}`, id);
}

type Kind = 'request' | 'notification' | 'response' | 'invalid';

function kindOf(v: unknown): Kind {
  if (!isPlainObject(v) || v.jsonrpc !== '2.0') return 'invalid';
  const hasId = typeof v.id === 'string' || (typeof v.id === 'number' && Number.isFinite(v.id));
  const paramsOk = v.params === undefined || isPlainObject(v.params);
  if (typeof v.method === 'string' && v.method.length > 0) {
    if (!paramsOk) return 'invalid';
    return hasId ? 'request' : 'id' in v ? 'invalid' : 'notification';
  }
  if ((hasId || v.id === null) && ('result' in v ? isPlainObject(v.result) && !('error' in v) : isPlainObject(v.error))) return 'response';
  return 'invalid';
}

/**
 * The era of a POST without a session id, from its parsed body and its headers. Legacy: initialize, no envelope and
 * no modern version header, a batch of 2025-era messages, a posted response. Modern: an envelope claim (checked), or
 * a modern version header (then the envelope is required). Anything that is neither is refused here.
 */
export function classifyPost(body: unknown, headers: Map<string, HeaderValue>): EraVerdict {
  const headerVersion = headers.get('mcp-protocol-version')?.value;
  const methodHeader = headers.get('mcp-method')?.value;
  const headerModern = headerVersion !== undefined && isModernVersion(headerVersion);
  // What is not modern (no envelope claim, no modern version header) is the legacy edge's to answer, in its words.
  if (Array.isArray(body)) {
    if (body.length === 0) return headerModern ? invalidRequest('empty JSON-RPC batch') : { era: 'legacy' };
    for (const element of body) {
      if (hasEnvelopeClaim(isPlainObject(element) ? element.params : undefined))
        return invalidRequest('JSON-RPC batches may not contain requests for protocol revision 2026-07-28 or later');
      if (headerModern && kindOf(element) === 'invalid') return invalidRequest('JSON-RPC batch contains an invalid message');
    }
    return { era: 'legacy' };
  }
  const kind = kindOf(body);
  if (kind === 'response') return { era: 'legacy' };
  if (kind === 'invalid') {
    if (!headerModern && !hasEnvelopeClaim(isPlainObject(body) ? body.params : undefined)) return { era: 'legacy' };
    return invalidRequest('the request body is not a valid JSON-RPC message', idOf(body));
  }
  const message = body as JsonRpcRequest | JsonRpcNotification;
  const id = kind === 'request' ? (message as JsonRpcRequest).id : null;
  const params = message.params;
  const claim = hasEnvelopeClaim(params);
  if (
    kind === 'request' &&
    message.method === 'initialize' &&
    !(claim && envelopeIssues(metaOf(params)!).length === 0 && isModernVersion(envelopeVersion(params)!))
  ) {
    if (headerModern)
      return mismatch('an initialize request (legacy handshake) was sent with a modern MCP-Protocol-Version header', id, headerVersion, 'initialize');
    return { era: 'legacy' };
  }
  if (claim) {
    const meta = metaOf(params)!;
    const claimed = envelopeVersion(params);
    if (kind === 'request') {
      const issue = envelopeIssues(meta)[0];
      if (issue !== undefined)
        return refusal(400, ErrorCode.InvalidParams, `Invalid _meta envelope for protocol revision 2026-07-28: ${issue.key}: ${issue.problem}`, id, {
          envelope: issue,
        });
    } else if (claimed === undefined) {
      const issue = { key: protocolVersionKey, problem: 'expected a protocol version string' };
      return refusal(400, ErrorCode.InvalidParams, `Invalid _meta envelope for protocol revision 2026-07-28: ${issue.key}: ${issue.problem}`, null, {
        envelope: issue,
      });
    }
    if (headerVersion !== undefined && claimed !== undefined && headerVersion !== claimed)
      return mismatch(
        `the body envelope names protocol version ${claimed} but the MCP-Protocol-Version header names ${headerVersion}`,
        id,
        headerVersion,
        claimed,
      );
    if (methodHeader !== undefined && methodHeader !== message.method)
      return mismatch(`the body names method ${message.method} but the Mcp-Method header names ${methodHeader}`, id, methodHeader, message.method);
    return { era: 'modern', message, version: claimed };
  }
  if (!headerModern) return { era: 'legacy' };
  if (kind === 'notification') {
    if (methodHeader !== undefined && methodHeader !== message.method)
      return mismatch(
        `the notification body names method ${message.method} but the Mcp-Method header names ${methodHeader}`,
        null,
        methodHeader,
        message.method,
      );
    return { era: 'modern', message, version: headerVersion };
  }
  const meta = metaOf(params);
  const missing =
    meta === undefined
      ? ['_meta']
      : envelopeIssues(meta)
          .filter((i) => i.problem === 'missing')
          .map((i) => i.key);
  const keys = missing.length > 0 ? missing : [protocolVersionKey];
  return refusal(
    400,
    ErrorCode.InvalidParams,
    `Invalid params: the MCP-Protocol-Version header names protocol revision ${headerVersion}, but the request is missing the required per-request envelope key(s): ${keys.join(', ')}`,
    id,
    { envelope: { missing: keys } },
  );
}

/** The answer to a modern request naming a version the gateway does not serve, or undefined when it serves it. */
export function unsupportedVersion(version: string | undefined, id: RequestId | null): Refusal | undefined {
  if (version !== undefined && modernVersions.includes(version)) return undefined;
  return refusal(
    400,
    ErrorCode.UnsupportedProtocolVersion,
    `Unsupported protocol version: ${version ?? 'unknown'} (supported versions: ${modernVersions.join(', ')})`,
    id,
    { supported: [...modernVersions], requested: version ?? 'unknown' },
  );
}

const sentinelPrefix = '=?base64?';
const sentinelSuffix = '?=';
const canonicalBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A header value as the client meant it: the `=?base64?…?=` form decoded (strict base64, UTF-8); undefined when undecodable. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith(sentinelPrefix) && value.endsWith(sentinelSuffix) && value.length >= sentinelPrefix.length + sentinelSuffix.length)) return value;
  const b64 = value.slice(sentinelPrefix.length, value.length - sentinelSuffix.length);
  if (!canonicalBase64.test(b64)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

/** Only visible ASCII, space and tab may stand in a header value; anything else must have been base64-encoded. */
export function hasInvalidCharacters(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c !== 0x09 && (c < 0x20 || c > 0x7e)) return true;
  }
  return false;
}

/** Which body field `Mcp-Name` mirrors, per method. */
const nameSource: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/**
 * The standard headers of a modern request, once its version is one the gateway serves: present, not repeated, of
 * valid characters, and `Mcp-Name` (decoded) equal to `params.name` / `params.uri`. Notifications are exempt from presence.
 */
export function checkStandardHeaders(message: JsonRpcRequest | JsonRpcNotification, headers: Map<string, HeaderValue>): Refusal | undefined {
  const id = 'id' in message ? message.id : null;
  for (const [name, h] of headers) {
    // An Mcp-Param-* header is checked only when the tool declares it (param-headers.ts); others are ignored, as the spec says.
    if (name.startsWith('mcp-param-')) continue;
    if (h.repeated) return mismatch(`the ${name} header appears more than once`, id, h.value, '(one value)');
    if (hasInvalidCharacters(h.value))
      return mismatch(`the ${name} header carries characters a header value may not hold (base64-encode them)`, id, name, '(valid characters)');
  }
  if (id === null) return undefined;
  const version = headers.get('mcp-protocol-version');
  if (version === undefined) {
    const claimed = envelopeVersion(message.params);
    return mismatch(
      claimed === undefined
        ? 'the body carries a modern per-request envelope but the required MCP-Protocol-Version header is absent'
        : `the body envelope names protocol version ${claimed} but the required MCP-Protocol-Version header is absent`,
      id,
      '(missing)',
      claimed ?? '(none)',
    );
  }
  if (headers.get('mcp-method') === undefined)
    return mismatch(`the body names method ${message.method} but the required Mcp-Method header is absent`, id, '(missing)', message.method);
  const field = Object.hasOwn(nameSource, message.method) ? nameSource[message.method] : undefined;
  if (field === undefined) return undefined;
  const source = message.params?.[field];
  const bodyValue = typeof source === 'string' ? source : undefined;
  const header = headers.get('mcp-name');
  if (header === undefined) {
    if (bodyValue === undefined) return undefined;
    return mismatch(`the body carries params.${field}=${JSON.stringify(bodyValue)} but the required Mcp-Name header is absent`, id, '(missing)', bodyValue);
  }
  // A name that is not a string (an array, a number) is not what the header names, whatever a server might coerce it to.
  if (source !== undefined && bodyValue === undefined)
    return mismatch(`the Mcp-Name header names a ${field} but the body's params.${field} is not a string`, id, header.value, typeof source);
  const decoded = decodeHeaderValue(header.value);
  if (decoded === undefined) return mismatch('the Mcp-Name header carries an invalid Base64 sentinel value', id, header.value, bodyValue ?? '(none)');
  if (bodyValue !== undefined && decoded !== bodyValue)
    return mismatch(
      `the body carries params.${field}=${JSON.stringify(bodyValue)} but the Mcp-Name header names ${JSON.stringify(decoded)}`,
      id,
      header.value,
      bodyValue,
    );
  return undefined;
}
