/**
 * A fetch for the SDK client's Streamable HTTP transport that keeps the exact text of every JSON-RPC message
 * the client sent (POST bodies) and received (JSON bodies and SSE `data`), so a test can compare the wire
 * with the recording byte for byte.
 */
export interface WireTap {
  fetch: typeof fetch;
  sent: string[];
  received: string[];
  /** Resolves when every SSE stream seen so far has been read to its end. */
  settled(): Promise<void>;
}

/** The data of each SSE event in a stream, as the client's EventSource parser would join it. */
async function readSse(stream: ReadableStream<Uint8Array>, out: string[]): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? nl + 2 : nl + 1);
        if (line === '') {
          const text = data.join('\n');
          if (data.length > 0 && text.length > 0) out.push(text);
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line[5] === ' ' ? 6 : 5));
        }
      }
    }
  } catch {
    // The stream was cut (the session ended): what arrived is kept.
  }
}

export function wireTap(): WireTap {
  const sent: string[] = [];
  const received: string[] = [];
  const readers: Promise<void>[] = [];
  const tapped: typeof fetch = async (input, init) => {
    if (init?.method === 'POST' && typeof init.body === 'string') sent.push(init.body);
    const res = await fetch(input, init);
    const type = res.headers.get('content-type') ?? '';
    if (res.body === null) return res;
    if (type.startsWith('text/event-stream')) {
      const [mine, theirs] = res.body.tee();
      readers.push(readSse(mine, received));
      return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    if (type.startsWith('application/json') && res.ok) {
      const text = await res.text();
      received.push(text);
      return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    return res;
  };
  return {
    fetch: tapped,
    sent,
    received,
    settled: async () => {
      await Promise.all(readers);
    },
  };
}
