import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type JsonRpcMessage, NestedTooDeepError, parseJsonText, type RequestId, splitJsonArray, toMessage } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { CutOffError, LinkError } from './broken-link.js';
import { UpstreamError } from './upstream.js';

/**
 * One HTTP request to an upstream server and the reading of its answer, shared by the legacy (session) and the
 * modern (per request) Streamable HTTP upstreams. Redirects are never followed.
 */

/**
 * Sends one request; resolves with the response once its head has arrived. `inflight` holds it until its response
 * closes (so that closing the link can destroy what is still open). Rejects with LinkError when nothing answered.
 */
export function httpExchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  agent: HttpAgent,
  inflight: Set<ClientRequest>,
  scrubber: CredentialScrubber,
  timeoutMs?: number,
): Promise<IncomingMessage> {
  const all = { ...headers };
  if (body !== undefined) all['content-length'] = String(Buffer.byteLength(body));
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: all, agent }, (res) => {
      res.once('close', () => inflight.delete(req));
      resolve(res);
    });
    inflight.add(req);
    if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', (err: NodeJS.ErrnoException) => {
      inflight.delete(req);
      reject(new LinkError(`the upstream server cannot be reached (${err.code ?? scrubber.scrub(err.message)})`, err.code));
    });
    req.end(body);
  });
}

/**
 * The error for a response whose status is not a success. `hadSession`: a 404 (or a 400 that names the session)
 * means the server no longer knows the session.
 */
export async function statusError(res: IncomingMessage, scrubber: CredentialScrubber, hadSession: boolean): Promise<UpstreamError> {
  const status = res.statusCode ?? 0;
  // Scrubbed whole, then cut: cutting first could leave the start of a credential the scrubber no longer recognizes.
  const text = scrubber.scrub(await readBody(res, 4096).catch(() => '')).slice(0, 300);
  // Many servers answer 400 rather than 404 for a session they no longer know; both mean start again.
  const lost = hadSession && (status === 404 || (status === 400 && /session/i.test(text)));
  const where = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
  const reason = text || scrubber.scrub(res.statusMessage ?? '').slice(0, 300);
  return new UpstreamError(`the upstream server answered HTTP ${status}${where}: ${reason}`.trim(), lost, status);
}

/** The whole body; rejects with CutOffError, holding what arrived, when the connection breaks before its end. */
export function readBody(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        tooLarge = true;
        res.destroy();
        reject(new UpstreamError(`the upstream response is larger than ${limit} bytes (limits.maxMessageSize)`, false));
        return;
      }
      chunks.push(c);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', () => {
      // An aborted response: told by 'close' below, with what arrived.
    });
    res.once('close', () => {
      if (!res.complete && !tooLarge) reject(new CutOffError(Buffer.concat(chunks).toString('utf8')));
    });
  });
}

/**
 * The message(s) in one JSON text the server sent (a body or an SSE event), scrubbed of injected credentials, each
 * with its own text. `problems` are what could not be taken; `refused` a request whose answer was refused as a whole
 * (nested too deep), which its caller fails rather than leaving it waiting forever.
 */
export function messagesIn(
  raw: string,
  what: string,
  scrubber: CredentialScrubber,
): { messages: Array<{ message: JsonRpcMessage; text: string }>; problems: Error[]; refused?: { id: RequestId; why: string } } {
  const text = scrubber.scrubJson(raw);
  const problems: Error[] = [];
  let value: unknown;
  try {
    value = parseJsonText(text);
  } catch (err) {
    problems.push(new Error(`the upstream server sent ${what} that the gateway cannot take: ${(err as Error).message}`));
    if (!(err instanceof NestedTooDeepError) || err.id === null) return { messages: [], problems };
    return { messages: [], problems, refused: { id: err.id, why: `the server's answer was refused: ${err.message}` } };
  }
  const items = Array.isArray(value) ? value : [value];
  const texts = Array.isArray(value) ? splitJsonArray(text) : [text];
  const messages: Array<{ message: JsonRpcMessage; text: string }> = [];
  items.forEach((item, i) => {
    try {
      messages.push({ message: toMessage(item), text: texts[i] ?? JSON.stringify(item) });
    } catch (err) {
      problems.push(new Error(`the upstream server sent an invalid message: ${(err as Error).message}`));
    }
  });
  return { messages, problems };
}
