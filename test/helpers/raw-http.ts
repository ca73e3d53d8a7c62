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
