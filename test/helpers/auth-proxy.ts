import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A pass-through HTTP proxy that adds an Authorization header to every request: for clients that cannot
 * send one (the conformance suite's server mode), so they can be pointed at a gateway that requires a
 * token. Streams both ways, so SSE works through it. Host and Origin pass as the client sent them, so the
 * gateway's DNS-rebinding checks see what the client did.
 */
export async function startAuthProxy(target: string | (() => string), authorization: string | (() => string)): Promise<{ url: string; stop(): Promise<void> }> {
  // Either may be given late (a function): a gateway configured with the proxy's origin starts after the proxy.
  const resolve = (v: string | (() => string)) => (typeof v === 'string' ? v : v());
  const server: Server = createServer((req, res) => {
    const to = new URL(resolve(target));
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, authorization: resolve(authorization) } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((closed) => {
        server.closeAllConnections();
        server.close(() => closed());
      }),
  };
}
