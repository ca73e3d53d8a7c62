import type { JsonRpcMessage, JsonRpcRequest } from '../protocol/jsonrpc.js';
import { type HeaderParam, headerParamsOf } from './modern-headers.js';

/** The 2026-07-28 protocol version the gateway speaks to modern servers. */
export const modernVersion = '2026-07-28';

/** How a modern call's failure begins when the server answered it as a 2025-era server does: not modern (now). */
export const answeredAsLegacy = 'the upstream server answered as a 2025-era server';

/** What a modern server said about itself in `server/discover`: all an emulated `initialize` answer needs. */
export interface DiscoverInfo {
  supportedVersions: string[];
  capabilities: Record<string, unknown>;
  serverInfo: unknown;
  instructions?: string;
}

/** One request in flight to a modern server. */
export interface ModernCall {
  /** The caller gave up: its stream closes (HTTP) or the server is told (stdio); nothing more is delivered. */
  cancel(): void;
  /** Backpressure: stop reading the call's answer until `resume()` (HTTP; a shared stdio process is never paused). */
  pause?(): void;
  resume?(): void;
}

/** What a modern transport tells about one call: its messages (notifications, then the response), or that it failed. */
export interface CallHandlers {
  message(message: JsonRpcMessage, text: string): void;
  /** No response will come (the connection broke, the process died, the server answered with no JSON-RPC). */
  failed(reason: string): void;
}

/** How requests reach a modern server: one POST each, or a line on one of a pool of stdio processes. */
export interface ModernTransport {
  call(request: JsonRpcRequest, handlers: CallHandlers): ModernCall;
  /** Ends what the transport holds (the stdio processes). */
  close(): Promise<void>;
}

/** A connection to a modern server, shared by all its sessions: its discovery, its transport, its tools' header parameters. */
export interface ModernConnection {
  readonly version: string;
  readonly discover: DiscoverInfo;
  readonly transport: ModernTransport;
  /** Each tool's `x-mcp-header` parameters, as its latest tools/list entry declared them. */
  readonly toolHeaders: Map<string, readonly HeaderParam[]>;
  /**
   * Set when the server proved not to be (or no longer be) a 2026-07-28 one (UpstreamEras.forget): the sessions on this
   * connection end at their next request, so that the next session is served in the era the server has now.
   */
  retired?: string;
}

/**
 * The discovery in a `server/discover` result, when it names a version the gateway speaks; otherwise why the server
 * does not count as modern.
 */
export function readDiscover(result: unknown): DiscoverInfo | { legacy: string } {
  if (result === null || typeof result !== 'object') return { legacy: 'its server/discover answer is not an object' };
  const r = result as Record<string, unknown>;
  const versions = Array.isArray(r.supportedVersions) ? r.supportedVersions.filter((v): v is string => typeof v === 'string') : [];
  if (!versions.includes(modernVersion)) return { legacy: `it supports ${versions.slice(0, 5).join(', ') || 'no version'}, not ${modernVersion}` };
  const meta = (r._meta as Record<string, unknown> | undefined) ?? {};
  const capabilities = r.capabilities !== null && typeof r.capabilities === 'object' ? (r.capabilities as Record<string, unknown>) : {};
  return {
    supportedVersions: versions,
    capabilities,
    serverInfo: meta['io.modelcontextprotocol/serverInfo'] ?? { name: 'unknown', version: 'unknown' },
    ...(typeof r.instructions === 'string' ? { instructions: r.instructions } : {}),
  };
}

/** The `server/discover` request the gateway sends as itself. */
export function discoverRequest(id: string): JsonRpcRequest {
  return {
    jsonrpc: '2.0',
    id,
    method: 'server/discover',
    params: {
      _meta: {
        'io.modelcontextprotocol/protocolVersion': modernVersion,
        'io.modelcontextprotocol/clientInfo': { name: 'portcullis', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  };
}

/** Learns the header parameters of the tools in a tools/list result (a tool with an invalid declaration sends none). */
export function learnToolHeaders(connection: ModernConnection, tools: unknown[], warn: (e: Error) => void): void {
  for (const t of tools) {
    const tool = t as { name?: unknown; inputSchema?: unknown } | null;
    if (tool === null || typeof tool !== 'object' || typeof tool.name !== 'string') continue;
    const params = headerParamsOf(tool.inputSchema);
    if ('invalid' in params) {
      warn(new Error(`tool ${JSON.stringify(tool.name.slice(0, 100))}: ${params.invalid}; no Mcp-Param headers are sent for it`));
      connection.toolHeaders.delete(tool.name);
    } else if (params.length > 0) connection.toolHeaders.set(tool.name, params);
    else connection.toolHeaders.delete(tool.name);
  }
}
