import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type CreateMessageRequest,
  type ElicitRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { TestGateway } from './gateway.js';

export type Edge = 'streamable-http' | 'sse' | 'stdio-bridge';

/** The repo's CLI entry point, for spawning `portcullis …` as a real process. */
export const cliPath = fileURLToPath(new URL('../../../bin/portcullis.js', import.meta.url));

/** A transport reaching `connection` on the gateway through one of its downstream edges. */
export function edgeTransport(edge: Edge, gw: TestGateway, connection: string): Transport {
  switch (edge) {
    case 'streamable-http':
      return new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: gw.auth } });
    case 'sse':
      return new SSEClientTransport(gw.sse(connection), { requestInit: { headers: gw.auth } });
    case 'stdio-bridge':
      return new StdioClientTransport({
        command: process.execPath,
        args: [cliPath, 'connect', connection, '--gateway', gw.url],
        env: { ...(process.env as Record<string, string>), PORTCULLIS_TOKEN: gw.token },
        stderr: 'pipe',
      });
  }
}

/** What the client's handlers saw of server→client requests. */
export interface ClientInbox {
  sampling: CreateMessageRequest['params'][];
  elicitation: ElicitRequest['params'][];
  rootsRequests: number;
}

/**
 * The official SDK client, declaring sampling, elicitation and roots, with handlers that answer like a
 * real host would (a canned model reply, an accepted form, one root).
 */
export async function connectClient(transport: Transport, name = 'portcullis-test'): Promise<{ client: Client; inbox: ClientInbox }> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } });
  const inbox: ClientInbox = { sampling: [], elicitation: [], rootsRequests: 0 };
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    inbox.sampling.push(req.params);
    return { role: 'assistant', model: 'test-model', content: { type: 'text', text: 'sampled reply from the test client' } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    inbox.elicitation.push(req.params);
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    inbox.rootsRequests++;
    return { roots: [{ uri: 'file:///tmp/portcullis-root', name: 'test root' }] };
  });
  await client.connect(transport);
  return { client, inbox };
}

/** Closes a client, ending its session cleanly where the transport can (DELETE on Streamable HTTP). */
export async function closeClient(client: Client, transport: Transport): Promise<void> {
  if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => {});
  await client.close();
}
