import { type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod/v4';

/** Helpers for MCP 2026-07-28 (modern era) tests: raw requests with the `_meta` envelope, a v2 SDK server, a v2 client. */

export const modernVersion = '2026-07-28';

/** The `_meta` envelope a 2026-07-28 client puts on every request. */
export function envelope(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': modernVersion,
    'io.modelcontextprotocol/clientInfo': { name: 'raw-modern', version: '1.0.0' },
    'io.modelcontextprotocol/clientCapabilities': {},
    ...extra,
  };
}

/** A modern request body. */
export function modernBody(method: string, params: Record<string, unknown> = {}, id: number | string = 1): Record<string, unknown> {
  return { jsonrpc: '2.0', id, method, params: { ...params, _meta: envelope((params._meta as Record<string, unknown>) ?? {}) } };
}

/** The headers a 2026-07-28 client sends with a request: protocol version, method, and the name where it applies. */
export function modernHeaders(method: string, name?: string): Array<[string, string]> {
  return [
    ['content-type', 'application/json'],
    ['accept', 'application/json, text/event-stream'],
    ['mcp-protocol-version', modernVersion],
    ['mcp-method', method],
    ...(name === undefined ? [] : ([['mcp-name', name]] as Array<[string, string]>)),
  ];
}

export interface RawAnswer {
  status: number;
  contentType: string;
  body: string;
  headers: IncomingHttpHeaders;
  /** The JSON-RPC message of the answer (the last SSE event when streamed), when there is one. */
  json?: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };
}

/** One raw HTTP request with exactly these header lines (a repeated name is sent twice), and its whole answer. */
export function rawRequest(url: URL | string, method: string, headers: Array<[string, string]>, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    // Node sends no Host of its own for headers given as raw lines; a server requires one.
    const flat = [['host', new URL(url).host], ...headers].flat();
    const req = request(url, { method, headers: flat as unknown as Record<string, string> }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const contentType = String(res.headers['content-type'] ?? '');
        let json: RawAnswer['json'];
        try {
          if (contentType.includes('text/event-stream')) {
            const data = text
              .split('\n\n')
              .map((b) =>
                b
                  .split('\n')
                  .filter((l) => l.startsWith('data:'))
                  .map((l) => l.slice(5).trim())
                  .join('\n'),
              )
              .filter((d) => d !== '');
            json = data.length > 0 ? JSON.parse(data.at(-1)!) : undefined;
          } else if (text !== '') json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, contentType, body: text, headers: res.headers, ...(json === undefined ? {} : { json }) });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export interface V2Server {
  url: string;
  stop(): Promise<void>;
}

/**
 * A v2 SDK server (`createMcpHandler`) in this process over HTTP, with an `echo` tool, a `greet` prompt and a
 * `demo://a` resource: `legacy: 'reject'` makes it modern-only, the default also serves 2025-era requests.
 */
export async function startV2Server(legacy: 'reject' | 'stateless'): Promise<V2Server> {
  const handler = createMcpHandler(
    () => {
      const server = new McpServer({ name: 'v2-reference', version: '1.0.0' });
      server.registerTool('echo', { description: 'Echoes', inputSchema: z.object({ message: z.string() }) }, async ({ message }) => ({
        content: [{ type: 'text', text: `Echo: ${message}` }],
      }));
      server.registerPrompt('greet', { description: 'Greets' }, async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }] }));
      server.registerResource('a', 'demo://a', {}, async () => ({ contents: [{ uri: 'demo://a', text: 'A' }] }));
      return server;
    },
    { legacy },
  );
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: (req: Request) => handler.fetch(req), port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    stop: async () => {
      await handler.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type NegotiationMode = { pin: string } | 'auto' | 'default';

/** The official v2 client in one of its negotiation modes, answering elicitation with a fixed form; `fetch` sees every request. */
export async function connectV2(
  url: URL,
  headers: Record<string, string>,
  mode: NegotiationMode,
  elicited: unknown[] = [],
  transport: { fetch?: (url: string | URL, init?: RequestInit) => Promise<Response> } = {},
): Promise<Client> {
  const client = new Client(
    { name: 'v2-test-client', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} } }, ...(mode === 'default' ? {} : { versionNegotiation: { mode } }) },
  );
  client.setRequestHandler('elicitation/create', async (req) => {
    elicited.push(req.params);
    return { action: 'accept', content: { name: 'Ada Lovelace' } };
  });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers }, ...transport }));
  return client;
}
