/** A bare Streamable HTTP client, for tests that must see the wire: statuses, headers, SSE event ids. */

export const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Reads SSE events from a response body as they arrive. */
export async function* sseEvents(body: ReadableStream<Uint8Array>, options: { includePriming?: boolean } = {}): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: SseEvent = { data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') data.push(value);
      }
      event.data = data.join('\n');
      // A priming event (an id with empty data) marks a resumption point; it carries no message.
      if (event.data === '' && !options.includePriming) continue;
      yield event;
    }
  }
}

/** POSTs an initialize outside any session, as a client opening one does; the response, whatever its status. */
export function postInitialize(
  endpoint: URL,
  auth: Record<string, string>,
  options: { protocolVersion?: string; id?: string | number; signal?: AbortSignal } = {},
): Promise<Response> {
  const { protocolVersion = '2025-11-25', id = 1, signal } = options;
  return fetch(endpoint, {
    method: 'POST',
    headers: { ...mcpHeaders, ...auth },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
    ...(signal === undefined ? {} : { signal }),
  });
}

/** Initializes a session over raw HTTP and sends `initialized`; returns the session id. */
export async function rawInitialize(endpoint: URL, auth: Record<string, string>, protocolVersion = '2025-11-25'): Promise<string> {
  const res = await postInitialize(endpoint, auth, { protocolVersion, id: 'init' });
  if (res.status !== 200) throw new Error(`initialize: HTTP ${res.status} ${await res.text()}`);
  const sessionId = res.headers.get('mcp-session-id');
  await res.text();
  if (!sessionId) throw new Error('initialize: no Mcp-Session-Id');
  const ack = await fetch(endpoint, {
    method: 'POST',
    headers: { ...mcpHeaders, ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  if (ack.status !== 202) throw new Error(`initialized: HTTP ${ack.status}`);
  return sessionId;
}

/**
 * A long operation called in session `headers` (server-everything's, 1.2 s in three steps): its POST's SSE response
 * dropped after the first event (progress 1), then resumed with Last-Event-ID. The resumption's response (its headers
 * say where it landed) and what it replayed, as `progress:<n>` and `response:<id>`.
 */
export async function dropAndResume(endpoint: URL, headers: Record<string, string>, id: string): Promise<{ resumed: Response; replay: string[] }> {
  const aborter = new AbortController();
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'trigger-long-running-operation', arguments: { duration: 1.2, steps: 3 }, _meta: { progressToken: `t-${id}` } },
  });
  const posted = await fetch(endpoint, { method: 'POST', headers, body, signal: aborter.signal });
  if (posted.headers.get('content-type') !== 'text/event-stream') throw new Error(`the call was answered ${posted.status} without a stream`);
  const first = (await sseEvents(posted.body!).next()).value as SseEvent | undefined;
  const progress = first === undefined ? undefined : (JSON.parse(first.data) as { params?: { progress?: number } }).params?.progress;
  if (progress !== 1 || first?.id === undefined) throw new Error(`the stream's first event is not progress 1 with an id: ${JSON.stringify(first)}`);
  aborter.abort();
  const resumed = await fetch(endpoint, { headers: { ...headers, accept: 'text/event-stream', 'last-event-id': first.id } });
  if (resumed.status !== 200) throw new Error(`the resumption was answered ${resumed.status}: ${await resumed.text()}`);
  const replay: string[] = [];
  for await (const e of sseEvents(resumed.body!)) {
    const m = JSON.parse(e.data) as { method?: string; id?: unknown; params: { progress: number } };
    replay.push(m.method ? `progress:${m.params.progress}` : `response:${m.id}`);
  }
  return { resumed, replay };
}
