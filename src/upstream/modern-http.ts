import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from 'node:http';
import { createParser } from 'eventsource-parser';
import { isResponse, type JsonRpcMessage, type JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { httpExchange, messagesIn, readBody, statusError } from './http-exchange.js';
import {
  answeredAsLegacy,
  type CallHandlers,
  type DiscoverInfo,
  discoverRequest,
  type ModernCall,
  type ModernTransport,
  modernVersion,
  readDiscover,
} from './modern-connection.js';
import { type HeaderParam, modernHeaders } from './modern-headers.js';
import { UpstreamError } from './upstream.js';

/** How long a server gets to answer `server/discover` before the probe gives up (not a verdict: asked again later). */
const probeTimeoutMs = 10_000;

/**
 * A 2026-07-28 server over Streamable HTTP: each request is one POST, its headers generated from its body (the
 * version, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` from the tool's `x-mcp-header` declarations) next to the
 * connection's configured ones, nothing of the client's. The answer is JSON, or an SSE stream whose notifications come
 * before the result; cancelling a call closes its stream (the 2026-07-28 way to cancel over HTTP). A JSON-RPC error
 * in a 4xx body (the typed -32020/-32021/-32022/-32602 errors, -32601 with 404) is the request's answer, as itself.
 */
export class ModernHttpTransport implements ModernTransport {
  readonly #url: URL;
  readonly #headers: Record<string, string>;
  readonly #agent: HttpAgent;
  readonly #maxBytes: number;
  readonly #scrubber: CredentialScrubber;
  readonly #paramsOf: (tool: string) => readonly HeaderParam[] | undefined;

  constructor(
    url: URL,
    headers: Record<string, string>,
    agent: HttpAgent,
    maxBytes: number,
    scrubber: CredentialScrubber,
    paramsOf: (tool: string) => readonly HeaderParam[] | undefined,
  ) {
    this.#url = url;
    this.#headers = {};
    for (const [k, v] of Object.entries(headers)) this.#headers[k.toLowerCase()] = v;
    this.#agent = agent;
    this.#maxBytes = maxBytes;
    this.#scrubber = scrubber;
    this.#paramsOf = paramsOf;
  }

  /**
   * Asks `server/discover`. Resolves with the discovery, or `legacy` with why the server is not a 2026-07-28 one (a
   * JSON-RPC error, 404/405/400 without one); rejects when the server cannot tell (unreachable, 401/403, 5xx).
   */
  async discover(timeoutMs = probeTimeoutMs): Promise<DiscoverInfo | { legacy: string }> {
    // A server that never answers (or keeps an SSE stream open without a response) must not hold every session of
    // the connection at start forever: the probe gives up, uncached, and the next session asks again.
    const mine = new Set<ClientRequest>();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        for (const req of mine) req.destroy();
        reject(new UpstreamError(`server/discover: no answer within ${timeoutMs} ms`, false));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.#discover(mine), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #discover(mine: Set<ClientRequest>): Promise<DiscoverInfo | { legacy: string }> {
    const request = discoverRequest('portcullis-discover');
    const res = await this.#post(request, mine);
    const status = res.statusCode ?? 0;
    const type = String(res.headers['content-type'] ?? '');
    if (status === 200 && (type.startsWith('application/json') || type.startsWith('text/event-stream'))) {
      const answer = await new Promise<JsonRpcMessage | string>((resolve) => this.#read(res, { message: (m) => resolve(m), failed: resolve }, true));
      if (typeof answer === 'string')
        throw new UpstreamError(`server/discover: ${answer} (if it is a 2025-era server, set protocol: 2025-11-25 on the connection)`, false);
      if (!isResponse(answer)) return { legacy: 'it did not answer server/discover' };
      if (answer.error !== undefined) return { legacy: `it answered server/discover with error ${answer.error.code} ${answer.error.message.slice(0, 100)}` };
      return readDiscover(answer.result);
    }
    if (status === 401 || status === 403 || status >= 500 || (status >= 200 && status < 400 && status !== 202))
      throw await statusError(res, this.#scrubber, false);
    res.resume();
    return { legacy: `it answered server/discover with HTTP ${status}` };
  }

  call(request: JsonRpcRequest, handlers: CallHandlers): ModernCall {
    const mine = new Set<ClientRequest>();
    let cancelled = false;
    let paused = false;
    let response: IncomingMessage | undefined;
    const h: CallHandlers = {
      message: (m, t) => {
        if (!cancelled) handlers.message(m, t);
      },
      failed: (why) => {
        if (!cancelled) handlers.failed(why);
      },
    };
    this.#post(request, mine).then(
      (res) => {
        response = res;
        if (cancelled) return void res.destroy();
        // Paused before the answer came: it stays unread (a 'data' listener does not resume an explicit pause).
        if (paused) res.pause();
        this.#answer(request, res, h);
      },
      (err: Error) => h.failed(err.message),
    );
    return {
      cancel: () => {
        cancelled = true;
        response?.destroy();
        for (const req of mine) req.destroy();
      },
      pause: () => {
        paused = true;
        response?.pause();
      },
      resume: () => {
        paused = false;
        response?.resume();
      },
    };
  }

  async close(): Promise<void> {
    // Nothing held between requests: each session cancels its own calls when it closes.
  }

  #post(request: JsonRpcRequest, mine = new Set<ClientRequest>()): Promise<IncomingMessage> {
    const headers = {
      ...this.#headers,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...modernHeaders(request, modernVersion, this.#paramsOf),
    };
    return httpExchange(this.#url, 'POST', headers, JSON.stringify(request), this.#agent, mine, this.#scrubber);
  }

  async #answer(request: JsonRpcRequest, res: IncomingMessage, h: CallHandlers): Promise<void> {
    const status = res.statusCode ?? 0;
    const type = String(res.headers['content-type'] ?? '');
    if (status === 200 && (type.startsWith('application/json') || type.startsWith('text/event-stream'))) return this.#read(res, h, false);
    if (status >= 400 && status < 500 && type.startsWith('application/json')) {
      // A refusal with a JSON-RPC error: the request's answer, as the server gave it (its id, or the request's).
      let body: string;
      try {
        body = await readBody(res, this.#maxBytes);
      } catch (err) {
        // Too large (the limit is named) or cut off: not an answer the client can be given.
        return h.failed((err as Error).message);
      }
      const { messages } = messagesIn(body, 'an error body', this.#scrubber);
      const m = messages[0];
      if (m !== undefined && isResponse(m.message) && m.message.error !== undefined) {
        // A 2025-era server refusing a request outside a session: the server is not modern (now); its era is asked again.
        if (status === 400 && m.message.error.code === -32000 && /Mcp-Session-Id|not initialized|Unsupported protocol version/i.test(m.message.error.message))
          return h.failed(`${answeredAsLegacy} (${m.message.error.message.slice(0, 100)})`);
        if (m.message.id === request.id) return h.message(m.message, m.text);
        return h.message({ ...m.message, id: request.id }, JSON.stringify({ ...m.message, id: request.id }));
      }
      return h.failed(`the upstream server answered HTTP ${status} without a JSON-RPC error`);
    }
    h.failed((await statusError(res, this.#scrubber, false)).message);
  }

  /** Reads a JSON body or an SSE stream until the response; `firstOnly`: only the response matters (the probe). */
  #read(res: IncomingMessage, h: CallHandlers, firstOnly: boolean): void {
    let answered = false;
    const deliver = (raw: string, what: string) => {
      // A message that cannot be taken is skipped; its request fails when the stream ends without an answer.
      const { messages } = messagesIn(raw, what, this.#scrubber);
      for (const { message, text } of messages) {
        if (answered) return;
        if (isResponse(message)) answered = true;
        if (!firstOnly || answered) h.message(message, text);
      }
    };
    if (String(res.headers['content-type']).startsWith('application/json')) {
      readBody(res, this.#maxBytes).then(
        (body) => {
          deliver(body, 'a body');
          if (!answered) h.failed('the upstream server answered without a response');
        },
        (err: Error) => h.failed(err.message),
      );
      return;
    }
    const parser = createParser({
      maxBufferSize: this.#maxBytes,
      onEvent: (event) => {
        if (event.data === '' || (event.event !== undefined && event.event !== 'message')) return;
        deliver(event.data, 'an SSE event');
      },
      onError: (err) => {
        h.failed(`the upstream SSE stream is malformed: ${this.#scrubber.scrub(err.message)}`);
        res.destroy();
      },
    });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => parser.feed(chunk));
    res.once('error', () => {});
    res.once('close', () => {
      if (!answered) h.failed('the upstream server closed its response stream before answering');
    });
  }
}
