import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/**
 * Short-lived client sessions, as agents make them, with the official SDK clients: connect, list the tools, three
 * `tools/call` (echo), close (a DELETE where there is a session to end, as the SDK's `terminateSession` sends it, then
 * `close()`). Every answer is checked, so a failed call never counts as a fast one. The client is the same for every
 * target of a comparison, so its own cost cancels out of the ratios.
 */

export type ClientKind =
  /** `@modelcontextprotocol/sdk` v1, Streamable HTTP. */
  | 'v1'
  /** `@modelcontextprotocol/client` v2 in its default mode (the 2025 handshake). */
  | 'v2-legacy'
  /** `@modelcontextprotocol/client` v2 pinned to 2026-07-28: `server/discover`, then stateless requests. */
  | 'v2-modern';

export interface SessionTarget {
  name: string;
  url: string;
  headers: Record<string, string>;
  client: ClientKind;
}

export interface SessionTiming {
  /** From the start of connect to the end of close. */
  sessionMs: number;
  /** Each tools/call's own time. */
  callMs: number[];
}

export const callsPerSession = 3;

interface AnyClient {
  listTools(): Promise<{ tools: Array<{ name: string }> }>;
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
  close(): Promise<void>;
}

export async function connect(target: SessionTarget): Promise<{ client: AnyClient; end: () => Promise<void> }> {
  const requestInit = { headers: target.headers };
  if (target.client === 'v1') {
    const transport = new StreamableHTTPClientTransport(new URL(target.url), { requestInit });
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(transport);
    return { client: client as unknown as AnyClient, end: () => transport.terminateSession() };
  }
  const transport = new V2Transport(new URL(target.url), { requestInit });
  const client = new V2Client(
    { name: 'bench', version: '1.0.0' },
    target.client === 'v2-modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {},
  );
  await client.connect(transport);
  if (target.client === 'v2-modern' && client.getProtocolEra() !== 'modern')
    throw new Error(`pinned to 2026-07-28, but connected as ${client.getProtocolEra()}`);
  // A modern client has no session to end; a legacy one sends DELETE.
  return { client: client as unknown as AnyClient, end: () => (transport.sessionId === undefined ? Promise.resolve() : transport.terminateSession()) };
}

/** One short-lived session against `target`; rejects unless every answer is the right one. */
export async function shortSession(target: SessionTarget): Promise<SessionTiming> {
  const start = performance.now();
  const { client, end } = await connect(target);
  const callMs: number[] = [];
  try {
    const { tools } = await client.listTools();
    if (!tools.some((t) => t.name === 'echo')) throw new Error(`${target.name}: tools/list has no echo tool`);
    for (let i = 0; i < callsPerSession; i++) {
      const t0 = performance.now();
      const result = (await client.callTool({ name: 'echo', arguments: { message: 'bench' } })) as { content?: Array<{ text?: string }> };
      callMs.push(performance.now() - t0);
      if (result.content?.[0]?.text !== 'Echo: bench') throw new Error(`${target.name}: echo failed: ${JSON.stringify(result).slice(0, 200)}`);
    }
    await end();
  } finally {
    await client.close();
  }
  return { sessionMs: performance.now() - start, callMs };
}

/** `clients` clients each running short sessions back to back for `ms`: the tools/call completed (3 a session). */
export async function sessionsClosedLoop(target: SessionTarget, clients: number, ms: number): Promise<{ calls: number; sessions: number; ms: number }> {
  let calls = 0;
  let sessions = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const timing = await shortSession(target);
        calls += timing.callMs.length;
        sessions++;
      }
    }),
  );
  return { calls, sessions, ms: performance.now() - start };
}

/** One `tools/call` (echo) on a connected client; rejects unless the echo came back. */
export async function echo(client: AnyClient): Promise<void> {
  const result = (await client.callTool({ name: 'echo', arguments: { message: 'bench' } })) as { content?: Array<{ text?: string }> };
  if (result.content?.[0]?.text !== 'Echo: bench') throw new Error(`echo failed: ${JSON.stringify(result).slice(0, 200)}`);
}
