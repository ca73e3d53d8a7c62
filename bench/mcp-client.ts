import { Agent, request } from 'node:http';

/**
 * A bare, constant-cost MCP client for benchmarks: the same code drives the direct server and the
 * gateway, so the client's own overhead cancels out of every ratio. It parses JSON and SSE answers and
 * checks every result, so a failed call can never count as a fast one.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 2048 });

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(url: URL, body: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC message with `id` in a JSON or SSE body. */
interface Answer {
  id?: number;
  result?: unknown;
  error?: unknown;
}

function messageWithId(reply: Reply, id: number): Answer | undefined {
  const type = String(reply.headers['content-type'] ?? '');
  const candidates = type.startsWith('text/event-stream')
    ? reply.body
        .split('\n')
        .filter((l) => l.startsWith('data: ') && l.length > 6)
        .map((l) => JSON.parse(l.slice(6)) as Answer)
    : [JSON.parse(reply.body) as Answer];
  return candidates.find((m) => m.id === id);
}

export interface McpSession {
  /** Calls `echo` once; rejects unless the real echo result came back. */
  echo(): Promise<void>;
  /** Calls `echo` with `message`; resolves with the text that came back (masked or not). */
  echoText(message: string): Promise<string>;
  /** Calls the echo tool by the name `tool` (a virtual server exposes it under another name); rejects unless it echoed. */
  echoAs(tool: string): Promise<void>;
  /** `tools/list`, following `nextCursor` to the end; resolves with the number of tools. */
  listTools(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens a session at `endpoint`, sending `token` as a bearer token on every request when given. `callsTo`: where its
 * calls go instead (another replica of the gateway, which forwards them to the one that opened the session).
 */
export async function openSession(endpoint: string, token?: string, callsTo?: string): Promise<McpSession> {
  const url = new URL(endpoint);
  const callUrl = new URL(callsTo ?? endpoint);
  const auth: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const init = await post(
    url,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    }),
    auth,
  );
  const sessionId = init.headers['mcp-session-id'];
  if (init.status !== 200 || typeof sessionId !== 'string') throw new Error(`initialize failed: HTTP ${init.status} ${init.body.slice(0, 200)}`);
  const headers = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
  const ack = await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
  if (ack.status !== 202) throw new Error(`initialized failed: HTTP ${ack.status}`);
  let next = 1;
  return {
    async echo() {
      const id = next++;
      const reply = await post(
        callUrl,
        JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'bench' } } }),
        headers,
      );
      const message = messageWithId(reply, id);
      const text = (message?.result as { content?: Array<{ text?: string }> } | undefined)?.content?.[0]?.text;
      if (text !== 'Echo: bench') throw new Error(`echo failed: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
    },
    async echoAs(tool: string) {
      const id = next++;
      const reply = await post(
        callUrl,
        JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { message: 'bench' } } }),
        headers,
      );
      const text = (messageWithId(reply, id)?.result as { content?: Array<{ text?: string }> } | undefined)?.content?.[0]?.text;
      if (text !== 'Echo: bench') throw new Error(`${tool} failed: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
    },
    async listTools() {
      let tools = 0;
      let cursor: string | undefined;
      do {
        const id = next++;
        const params = cursor === undefined ? {} : { cursor };
        const reply = await post(callUrl, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params }), headers);
        const result = messageWithId(reply, id)?.result as { tools?: unknown[]; nextCursor?: string } | undefined;
        if (!Array.isArray(result?.tools)) throw new Error(`tools/list failed: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
        tools += result.tools.length;
        cursor = result.nextCursor;
      } while (cursor !== undefined);
      return tools;
    },
    async echoText(message: string) {
      const id = next++;
      const reply = await post(url, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } }), headers);
      const text = (messageWithId(reply, id)?.result as { content?: Array<{ text?: string }> } | undefined)?.content?.[0]?.text;
      if (typeof text !== 'string') throw new Error(`echo failed: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
      return text;
    },
    async close() {
      await new Promise<void>((resolve) => {
        const req = request(url, { method: 'DELETE', agent, headers }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => resolve());
        req.end();
      });
    },
  };
}

export function destroyAgent(): void {
  agent.destroy();
}
