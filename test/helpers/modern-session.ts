import type { Identity } from '../../src/core/identity.js';
import type { JsonRpcMessage } from '../../src/protocol/jsonrpc.js';
import type { SessionOrigin } from '../../src/session/registry.js';
import type { TestGateway } from './gateway.js';
import { waitFor } from './wait.js';

/** A call of a recorded modern session: its id, the tool (echo with `message`, or any other tool without arguments), its W3C trace. */
export interface ModernCall {
  id: number;
  tool?: string;
  message?: string;
  trace: string;
}

export const traceparent = (trace: string) => `00-${trace}-00f067aa0ba902b7-01`;

/**
 * Records a session as the modern edge records one: the gateway's own session with the edge name `modern`, initialized
 * for the client, each request naming its protocol version (2026-07-28) and a W3C trace in `_meta`; a server's
 * elicitation is answered as an MRTR round's answer would be. Returns the session id once it is closed.
 */
export async function recordModernSession(gw: TestGateway, connectionName: string, identity: Identity, calls: ModernCall[]): Promise<string> {
  const connection = gw.gateway.sessions.connection(connectionName)!;
  const session = await gw.gateway.sessions.create(connection, identity, { edge: 'modern' } as unknown as SessionOrigin);
  const got: JsonRpcMessage[] = [];
  const send = (m: Record<string, unknown>) => session.receive(m as unknown as JsonRpcMessage, JSON.stringify(m));
  session.attach({
    send: (m) => {
      got.push(m);
      if ('method' in m && m.method === 'elicitation/create' && 'id' in m)
        send({ jsonrpc: '2.0', id: m.id, result: { action: 'accept', content: { name: 'Grace Hopper', check: true } } });
    },
    abandon() {},
    connected: false,
    close() {},
  });
  const answered = (id: number) => waitFor(() => got.some((m) => 'id' in m && m.id === id && !('method' in m)), `the answer to ${id}`);
  send({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: { elicitation: { form: {} } }, clientInfo: { name: 'modern-client', version: '2.4.0' } },
  });
  await answered(1);
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  for (const c of calls) {
    send({
      jsonrpc: '2.0',
      id: c.id,
      method: 'tools/call',
      params: {
        name: c.tool ?? 'echo',
        arguments: c.tool === undefined ? { message: c.message ?? '' } : {},
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', traceparent: traceparent(c.trace), progressToken: `p${c.id}` },
      },
    });
    await answered(c.id);
  }
  await session.close('the modern pool closed it');
  return session.id;
}
