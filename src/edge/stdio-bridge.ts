import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, errorResponse, isRequest, isResponse, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';

export interface StdioBridgeOptions {
  /** The connection's Streamable HTTP endpoint on the gateway, e.g. http://127.0.0.1:8080/mcp/everything. */
  endpoint: URL;
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  /** Where to say what went wrong; stdout belongs to the protocol. */
  report?: (line: string) => void;
  /** The bearer token for each request, asked afresh every time so that a refreshed token is used at once. */
  token?: () => Promise<string | undefined>;
}

/** fetch that adds the current bearer token to every request to the gateway. */
function withToken(token: () => Promise<string | undefined>): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    const value = await token();
    if (value !== undefined) headers.set('authorization', `Bearer ${value}`);
    return fetch(input, { ...init, headers });
  };
}

/** Says what went wrong in words a person configuring a desktop client can act on. */
function describeError(err: unknown, endpoint: URL): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message;
  if (why) return `cannot reach the gateway at ${endpoint.href} (${why}); is \`portcullis gateway\` running there?`;
  const message = (err as Error).message ?? String(err);
  if (/\b401\b|Unauthorized/i.test(message)) return `the gateway did not accept the token (${message}); sign in with \`portcullis login\``;
  if (/\b403\b/.test(message)) return `the gateway refused access (${message})`;
  return message;
}

/**
 * `portcullis connect`: a stdio MCP server as far as the desktop client is concerned, relaying every
 * message to the gateway over Streamable HTTP. Resolves when either side ends.
 */
export async function runStdioBridge(o: StdioBridgeOptions): Promise<void> {
  const report = o.report ?? ((line: string) => process.stderr.write(`portcullis connect: ${line}\n`));
  const local = new StdioServerTransport(o.stdin as never, o.stdout as never);
  const remote = new StreamableHTTPClientTransport(o.endpoint, {
    ...(o.token ? { fetch: withToken(o.token) } : {}),
  });
  /** Requests sent to the gateway and not yet answered: answered with an error if the gateway goes away. */
  const inFlight = new Map<string, { id: RequestId; method: string }>();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  let ending = false;

  const end = async (why?: string) => {
    if (ending) return;
    ending = true;
    if (why) report(why);
    for (const { id } of inFlight.values()) {
      await local.send(errorResponse(id, ErrorCode.UpstreamUnavailable, `Gateway unavailable: ${why ?? 'bridge closed'}`) as JSONRPCMessage).catch(() => {});
    }
    await remote.terminateSession().catch(() => {});
    await remote.close().catch(() => {});
    await local.close().catch(() => {});
    done();
  };

  remote.onmessage = (m) => {
    const message = m as JsonRpcMessage;
    if (isResponse(message) && message.id !== null) {
      const pending = inFlight.get(String(message.id));
      inFlight.delete(String(message.id));
      // Streamable HTTP carries the negotiated version as a header from now on.
      const version = (message.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
      if (pending?.method === 'initialize' && typeof version === 'string') remote.setProtocolVersion(version);
    }
    local.send(m).catch((err: unknown) => void end(`writing to stdout failed: ${(err as Error).message}`));
  };
  remote.onerror = (err) => report(`gateway stream: ${describeError(err, o.endpoint)}`);
  local.onmessage = (m) => {
    const message = m as JsonRpcMessage;
    if (isRequest(message)) inFlight.set(String(message.id), { id: message.id, method: message.method });
    remote.send(m).catch((err: unknown) => {
      const text = describeError(err, o.endpoint);
      if (isRequest(message)) {
        inFlight.delete(String(message.id));
        void local.send(errorResponse(message.id, ErrorCode.UpstreamUnavailable, `Gateway error: ${text}`) as JSONRPCMessage).catch(() => {});
      }
      report(`sending to the gateway failed: ${text}`);
      // A lost session cannot be recovered behind the client's back: end, so the client restarts us.
      if (/\b404\b/.test(text)) void end('the gateway no longer knows this session');
    });
  };
  local.onerror = (err) => report(`stdin: ${err.message}`);
  local.onclose = () => void end();
  (o.stdin ?? process.stdin).once('end', () => void end());

  await remote.start();
  await local.start();
  await finished;
}
