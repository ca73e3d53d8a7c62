import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/**
 * A small Streamable HTTP MCP server (JSON answers) that keeps every message it receives, so a test can prove
 * what did and did not reach the upstream. It answers initialize, ping, tools/list and tools/call `echo`.
 */
export interface EchoServer {
  url: string;
  /** Every JSON-RPC message received, parsed, in order. */
  received: Array<{ id?: unknown; method?: string; params?: { name?: string; arguments?: Record<string, unknown> } }>;
  /** The W3C `traceparent` header each message in `received` came with (undefined: none). */
  traceparents: Array<string | undefined>;
  stop(): Promise<void>;
}

/** `listChanged`: it declares `tools.listChanged` (it never sends one: its one tool never changes). */
export async function startEchoServer(options: { listChanged?: boolean } = {}): Promise<EchoServer> {
  const received: EchoServer['received'] = [];
  const traceparents: EchoServer['traceparents'] = [];
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET') return void res.writeHead(405, { allow: 'POST, DELETE' }).end();
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const m = JSON.parse(body) as EchoServer['received'][number];
      received.push(m);
      traceparents.push(typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined);
      if (m.id === undefined) return void res.writeHead(202).end();
      let result: unknown;
      switch (m.method) {
        case 'initialize':
          result = {
            protocolVersion: '2025-11-25',
            capabilities: { tools: options.listChanged === true ? { listChanged: true } : {} },
            serverInfo: { name: 'echo-server', version: '1.0.0' },
          };
          break;
        case 'tools/list':
          result = { tools: [{ name: 'echo', inputSchema: { type: 'object', properties: { message: { type: 'string' } } } }] };
          break;
        case 'tools/call':
          result = { content: [{ type: 'text', text: `Echo: ${String(m.params?.arguments?.message ?? '')}` }] };
          break;
        default:
          result = {};
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (m.method === 'initialize') headers['mcp-session-id'] = randomUUID();
      res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received,
    traceparents,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
