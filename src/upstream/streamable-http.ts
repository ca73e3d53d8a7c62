import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { UpstreamConfig } from './config.js';
import { ErrorCode, errorResponse, isRequest, isResponse, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';
import type { CredentialScrubber } from '../scrub/credential-scrubber.js';
import { CutOffError, holdsEvent, lastEventEnd, LinkError, refusesConnections } from './broken-link.js';
import { httpExchange, messagesIn, readBody, statusError } from './http-exchange.js';
import { type Upstream, UpstreamError } from './upstream.js';

type HttpConfig = Pick<Extract<UpstreamConfig, { kind: 'http' | 'sse' }>, 'kind' | 'url' | 'headers'>;

/** How often, and how far apart, a dropped SSE stream is reopened before the link gives up. */
const maxReconnects = 5;
const defaultRetryMs = 1000;
/** How long the first message after `initialized` waits for the standalone GET stream to open. */
const getStreamOpenTimeoutMs = 2000;

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void p.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Streamable HTTP upstream on node:http. The SDK's client transport does the same job over fetch and
 * web streams; in front of a server that answers in a couple of milliseconds that overhead doubled the
 * latency (BENCHMARKS.md), so the gateway's hot path speaks the transport directly: keep-alive sockets,
 * JSON or SSE responses, the session and protocol-version headers, the standalone GET stream, and
 * resumption with Last-Event-ID when a stream drops before its response. Redirects are never followed,
 * so a server cannot send the gateway to another address.
 *
 * When an answer breaks off (the connection reset, the stream cut mid-event), what arrived is reported as
 * truncated and the requests it would have answered are failed by the gateway. The link then ends as "gone" if
 * the server's address refuses connections (its process died): a later call could only fail too. A server that
 * no longer knows the session (404) ends it as well; a reset with the server still listening (a proxy dropping
 * a connection) fails only the calls it cut.
 */
export class StreamableHttpUpstream implements Upstream {
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string) => void;
  onerror?: (error: Error) => void;
  ontruncated?: (partial: string, reason: string) => void;
  onfailed?: (ids: RequestId[], reason: string) => void;

  readonly #url: URL;
  readonly #headers: Record<string, string>;
  readonly #agent: HttpAgent;
  readonly #maxBytes: number;
  readonly #scrubber: CredentialScrubber;
  #sessionId: string | undefined;
  #protocolVersion: string | undefined;
  #closed = false;
  /** The server is gone (its address refuses connections): nothing more is sent, not even the DELETE. */
  #gone = false;
  readonly #inflight = new Set<ClientRequest>();
  #getStream: IncomingMessage | undefined;
  #getStreamOpening: Promise<void> | undefined;
  #getLastEventId: string | undefined;
  /** SSE streams being read, paused together when the client falls behind (backpressure). */
  readonly #streams = new Set<IncomingMessage>();
  #paused = false;

  /** `scrubber` takes the credentials the gateway injected out of every text the server sends, where it enters. */
  constructor(config: HttpConfig, agent: HttpAgent, maxMessageBytes: number, scrubber: CredentialScrubber) {
    this.#url = new URL(config.url.reveal());
    this.#headers = {};
    for (const [k, v] of Object.entries(config.headers)) this.#headers[k.toLowerCase()] = v.reveal();
    this.#agent = agent;
    this.#maxBytes = maxMessageBytes;
    this.#scrubber = scrubber;
  }

  async start(): Promise<void> {
    // Nothing to connect yet: the first POST (initialize) opens the session.
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  /** Stops reading the server's SSE streams: TCP's window closes and the server waits, holding nothing here. */
  pause(): void {
    this.#paused = true;
    for (const res of this.#streams) res.pause();
  }

  resume(): void {
    this.#paused = false;
    for (const res of this.#streams) res.resume();
  }

  async send(message: JsonRpcMessage, text: string, traceparent?: string): Promise<void> {
    if (this.#getStreamOpening !== undefined) await this.#getStreamOpening;
    if (!('method' in message && message.method === 'notifications/initialized')) return this.#send(message, text, traceparent);
    // What the client sends next waits until the server has heard `initialized` (then, briefly, for the GET stream
    // below): on concurrent connections a call could otherwise overtake it, or find the server gone because of it.
    const sending = this.#send(message, text);
    const gate: Promise<void> = sending
      .then(
        () => (this.#getStreamOpening === gate ? undefined : this.#getStreamOpening),
        () => {},
      )
      .finally(() => {
        if (this.#getStreamOpening === gate) this.#getStreamOpening = undefined;
      });
    this.#getStreamOpening = gate;
    return sending;
  }

  async #send(message: JsonRpcMessage, text: string, traceparent?: string): Promise<void> {
    if (this.#closed) throw new UpstreamError('the upstream link is closed', true);
    let res: IncomingMessage;
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    // W3C trace context (tracing on): the server's spans continue the gateway's upstream call.
    if (traceparent !== undefined) headers.traceparent = traceparent;
    try {
      res = await this.#request('POST', text, headers);
    } catch (err) {
      if (!(err instanceof LinkError)) throw err;
      if (err.sessionLost) {
        this.#gone = true;
        throw err;
      }
      // Reset before any answer: the server may have died with the request; say so only once it is sure.
      throw await this.#afterBreak(err.message);
    }
    const sessionId = res.headers['mcp-session-id'];
    if (typeof sessionId === 'string' && sessionId.length > 0) this.#sessionId = sessionId;
    const status = res.statusCode ?? 0;
    if (status === 202 || status === 204) {
      res.resume();
      if ('method' in message && message.method === 'notifications/initialized') {
        // A server that sends a request on its own (not tied to a call) sends it on this stream, and drops it
        // if the stream is not open yet; so what the client sends next waits, briefly, until it is.
        this.#getStreamOpening = withTimeout(this.#openGetStream(undefined, 0), getStreamOpenTimeoutMs).finally(() => {
          this.#getStreamOpening = undefined;
        });
      }
      return;
    }
    if (status !== 200) throw await this.#statusError(res);
    const type = String(res.headers['content-type'] ?? '');
    const waiting = isRequest(message) ? [message.id] : [];
    if (type.startsWith('text/event-stream')) {
      // Not awaited: the stream may run as long as the call does; messages flow as they come.
      this.#consumeSse(res, waiting, 'post');
      return;
    }
    if (type.startsWith('application/json')) {
      let body: string;
      try {
        body = await this.#readBody(res);
      } catch (err) {
        if (!(err instanceof CutOffError)) throw err;
        if (err.partial.length > 0) this.ontruncated?.(this.#scrubber.scrub(err.partial), err.message);
        throw await this.#afterBreak(err.message);
      }
      this.#deliverJson(body);
      return;
    }
    res.resume();
    throw new UpstreamError(
      `the upstream server answered with an unexpected Content-Type ${JSON.stringify(this.#scrubber.scrub(type).slice(0, 60))}`,
      false,
      status,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const req of this.#inflight) req.destroy();
    this.#inflight.clear();
    this.#getStream?.destroy();
    if (this.#sessionId !== undefined && !this.#gone) {
      // Tell the server the session is over; it may already be gone, which is fine.
      await this.#request('DELETE', undefined, {}, 2000).then(
        (res) => res.resume(),
        () => {},
      );
    }
    this.onclose?.('closed by the gateway');
  }

  #request(method: string, body: string | undefined, extra: Record<string, string>, timeoutMs?: number): Promise<IncomingMessage> {
    const headers: Record<string, string> = { ...this.#headers, ...extra };
    if (this.#sessionId !== undefined) headers['mcp-session-id'] = this.#sessionId;
    if (this.#protocolVersion !== undefined) headers['mcp-protocol-version'] = this.#protocolVersion;
    return httpExchange(this.#url, method, headers, body, this.#agent, this.#inflight, this.#scrubber, timeoutMs);
  }

  async #statusError(res: IncomingMessage): Promise<UpstreamError> {
    return statusError(res, this.#scrubber, this.#sessionId !== undefined);
  }

  #readBody(res: IncomingMessage, limit = this.#maxBytes): Promise<string> {
    return readBody(res, limit);
  }

  /**
   * After an answer broke off: the error for the requests it cut, and whether the server is gone. Gone means its
   * address refuses connections now (the process died; a restarted one would not know the session either).
   */
  async #afterBreak(why: string): Promise<UpstreamError> {
    if (!(await refusesConnections(this.#url))) return new UpstreamError(why, false);
    this.#gone = true;
    return new UpstreamError(`${why}, and the server is gone (its address refuses connections)`, true);
  }

  /** The server is gone: the link ends, and with it the session. */
  #goneNow(why: string): void {
    if (this.#closed) return;
    this.#gone = true;
    this.#closed = true;
    for (const req of this.#inflight) req.destroy();
    this.#inflight.clear();
    this.#getStream?.destroy();
    this.onclose?.(`the upstream server is gone: ${why}`);
  }

  /** After a stream broke: ends the link if the server is gone. */
  #checkGone(why: string): void {
    if (this.#closed) return;
    void refusesConnections(this.#url).then((refused) => {
      if (refused) this.#goneNow(`${why}, and its address refuses connections`);
    });
  }

  #deliverJson(text: string): void {
    this.#deliverText(text, 'a body');
  }

  /** Delivers the message(s) in one JSON text (a body or an SSE event); returns the ids of the responses among them. */
  #deliverText(raw: string, what: string): Array<RequestId | null> {
    const { messages, problems, refused } = messagesIn(raw, what, this.#scrubber);
    for (const p of problems) this.onerror?.(p);
    // An answer the gateway cannot take: its request gets an error rather than waiting forever.
    if (refused !== undefined) this.#fail([refused.id], refused.why);
    const answered: Array<RequestId | null> = refused === undefined ? [] : [refused.id];
    for (const { message, text } of messages) {
      this.onmessage?.(message, text);
      if (isResponse(message)) answered.push(message.id);
    }
    return answered;
  }

  /**
   * Reads an SSE stream. `waiting` are the ids of requests whose responses belong on it: when the
   * stream ends before they are answered, it is resumed with Last-Event-ID, or they are failed.
   */
  #consumeSse(res: IncomingMessage, waiting: RequestId[], kind: 'post' | 'get', attempt = 0): void {
    const pending = new Set(waiting);
    let lastEventId: string | undefined;
    let retryMs = defaultRetryMs;
    const parser = createParser({
      maxBufferSize: this.#maxBytes,
      onEvent: (event: EventSourceMessage) => {
        if (event.id !== undefined) {
          lastEventId = event.id;
          if (kind === 'get') this.#getLastEventId = event.id;
        }
        if (event.data === '' || (event.event !== undefined && event.event !== 'message')) return;
        for (const answered of this.#deliverText(event.data, 'an SSE event')) {
          if (answered !== null) pending.delete(answered);
        }
      },
      onRetry: (ms: number) => (retryMs = ms),
      onError: (err) => {
        this.onerror?.(new Error(`the upstream SSE stream is malformed: ${this.#scrubber.scrub(err.message)}`));
        res.destroy();
      },
    });
    // The text after the last complete event: on a break, what had arrived of an unfinished one.
    let unfinished = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const from = Math.max(0, unfinished.length - 3);
      unfinished += chunk;
      const end = lastEventEnd(unfinished, from);
      if (end >= 0) unfinished = unfinished.slice(end);
      if (unfinished.length > this.#maxBytes) unfinished = unfinished.slice(0, this.#maxBytes);
      parser.feed(chunk);
    });
    this.#streams.add(res);
    res.once('close', () => this.#streams.delete(res));
    if (this.#paused) res.pause();
    const ended = (broken: boolean) => {
      if (this.#closed) return;
      const cutOff = holdsEvent(unfinished);
      if (cutOff) {
        this.ontruncated?.(
          this.#scrubber.scrub(unfinished),
          `the upstream server's ${kind === 'get' ? 'stream' : 'response stream'} ${broken ? 'broke' : 'ended'} in the middle of an event`,
        );
        unfinished = '';
      }
      if (kind === 'get') {
        if (this.#getStream !== res) return;
        this.#getStream = undefined;
        void this.#openGetStream(this.#getLastEventId, attempt + 1, retryMs);
        return;
      }
      if (pending.size === 0) return;
      if (lastEventId !== undefined && attempt < maxReconnects) {
        setTimeout(() => this.#resume(lastEventId!, [...pending], attempt + 1), retryMs).unref();
        return;
      }
      const why = cutOff ? 'the upstream server stopped in the middle of its answer' : 'the upstream server closed its response stream before answering';
      this.#fail([...pending], why);
      if (broken || cutOff) this.#checkGone(why);
    };
    res.once('end', () => ended(false));
    res.once('error', () => {});
    res.once('close', () => {
      if (!res.complete) ended(true);
    });
  }

  /** Reopens a POST's stream after a drop (2025-11-25 SSE polling, or a network blip). */
  #resume(lastEventId: string, pending: RequestId[], attempt: number): void {
    if (this.#closed) return;
    this.#request('GET', undefined, { accept: 'text/event-stream', 'last-event-id': lastEventId }).then(
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          this.#fail(pending, `the upstream server refused to resume the stream (HTTP ${res.statusCode})`);
          return;
        }
        this.#consumeSse(res, pending, 'post', attempt);
      },
      (err: Error) => {
        this.#fail(pending, err.message);
        if (err instanceof LinkError && err.sessionLost) this.#goneNow(err.message);
      },
    );
  }

  /** Requests whose answers are lost: failed by the session as the gateway's own errors. */
  #fail(pending: RequestId[], why: string): void {
    if (pending.length === 0) return;
    if (this.onfailed !== undefined) return this.onfailed(pending, why);
    // A relay (the agent) has no session to answer them: the errors go on as messages, the gateway's at the far end.
    for (const id of pending) {
      const error = errorResponse(id, ErrorCode.UpstreamUnavailable, `Upstream server error: ${why}`);
      this.onmessage?.(error, JSON.stringify(error));
    }
  }

  /**
   * The standalone GET stream for server-initiated messages; optional for servers (405 = not offered).
   * Resolves once the server has answered the attempt (or it failed), so the first open can be awaited.
   */
  #openGetStream(lastEventId: string | undefined, attempt: number, delayMs = 0): Promise<void> {
    if (this.#closed || attempt > maxReconnects) return Promise.resolve();
    return new Promise<void>((answered) => {
      const open = () => {
        if (this.#closed) return answered();
        const extra: Record<string, string> = { accept: 'text/event-stream' };
        if (lastEventId !== undefined) extra['last-event-id'] = lastEventId;
        this.#request('GET', undefined, extra).then(
          (res) => {
            answered();
            if (res.statusCode === 200 && String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
              this.#getStream = res;
              this.#consumeSse(res, [], 'get', 0);
              return;
            }
            res.resume();
            if (res.statusCode === 404 && this.#sessionId !== undefined) {
              this.onerror?.(new Error('the upstream server no longer knows the session'));
              void this.close().then(() => {});
            }
            // 405 and the like: this server offers no standalone stream.
          },
          (err: Error) => {
            answered();
            if (err instanceof LinkError && err.sessionLost) return this.#goneNow(err.message);
            void this.#openGetStream(lastEventId, attempt + 1, defaultRetryMs * (attempt + 1));
          },
        );
      };
      if (delayMs > 0) setTimeout(open, delayMs).unref();
      else open();
    });
  }
}
