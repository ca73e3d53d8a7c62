import { createServer, type Server } from 'node:http';

/** A local OTLP/HTTP collector for the tracing bench: takes every trace export, counts its spans, keeps nothing. */
export interface OtlpSink {
  /** The base URL (`telemetry.otlp.endpoint`). */
  url: string;
  /** Spans received so far. */
  readonly spans: number;
  stop(): Promise<void>;
}

const spanIdKey = Buffer.from('"spanId"');

export async function startOtlpSink(): Promise<OtlpSink> {
  let spans = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // Counting "spanId" keys (natively, without decoding) is enough: the JSON encoding names each span's id once.
      const body = Buffer.concat(chunks);
      for (let at = body.indexOf(spanIdKey); at >= 0; at = body.indexOf(spanIdKey, at + spanIdKey.length)) spans++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    get spans() {
      return spans;
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
