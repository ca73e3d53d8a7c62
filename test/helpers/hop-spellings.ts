import { createServer, type IncomingMessage, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What a load balancer in front of the replicas must refuse (the internal hop, docs/cluster-hop.md), however the path
 * is spelled, and what it must pass on: the deployment examples' tests (examples/haproxy.cfg, examples/nginx.conf)
 * send both through the real balancer.
 */

/** Every one of these is a hop path to the gateway (its URL parsing resolves dot segments, `%2e`, and `\` as `/`). */
export const hopSpellings = [
  '/_portcullis/hop/mcp/everything',
  '/mcp/../_portcullis/hop/mcp/everything',
  '/mcp/%2e%2E/_portcullis/hop/mcp/everything',
  '/mcp/.%2E/_portcullis/hop/mcp/everything',
  '/./_portcullis/hop/mcp/everything',
  '/mcp\\..\\_portcullis\\hop\\mcp\\everything',
  '/_portcullis\\hop/mcp/everything',
  '/_portcullis/hop/sse/everything/messages?sessionId=x',
  'http://portcullis.example/_portcullis/hop/mcp/everything',
];

/** Not hops, passed on: a connection with "portcullis" in its name, "_portcullis" in a query. */
export const notHops = ['/mcp/everything', '/mcp/my_portcullis', '/sse/everything/messages?sessionId=_portcullis', '/api/sessions'];

/** The path the gateway takes a request target for, as its HTTP server parses it (src/http/http-server.ts). */
export const gatewayPath = (target: string) => new URL(target, 'http://gateway').pathname;

/** What answered a request: its status and body. */
export interface Answer {
  status: number;
  body: string;
}

/** Sends `target` as the request line's target, exactly (no URL parsing on the way). */
export function send(base: string, target: string): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    // An absolute-form target names its own host, which the Host header must match.
    const headers = URL.canParse(target) ? { host: new URL(target).host } : {};
    const req = httpRequest({ host: hostname, port, path: target, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A stand-in replica on loopback: answers everything 200 (its /readyz too), noting each request target that reached it. */
export async function standInReplica(): Promise<{ server: Server; port: number; reached: string[] }> {
  const reached: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    reached.push(req.url ?? '');
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, reached };
}
