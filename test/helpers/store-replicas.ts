import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { GatewayOptions } from '../../src/gateway.js';
import { type EchoServer, startEchoServer } from './echo-server.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { postgresTestStore, type TestStore } from './stores.js';

process.env.PORTCULLIS_TEST_REPLICAS_SECRET ??= 'cluster-secret-for-store-replicas-0123456789';
/** cluster.secret of replicas on one store (each base() has it): without it a second replica is refused at start. */
export const replicaSecret = '${env:PORTCULLIS_TEST_REPLICAS_SECRET}';

/**
 * What in-process replicas on one PostgreSQL store stand on: the store (a fresh schema), an echo server for their
 * connections, and one data directory, hence one dev identity: a token minted on one replica is good on all. The
 * replicas started here, the clients a test hands over and everything else go with stop().
 */
export interface StoreReplicas {
  store: TestStore;
  echo: EchoServer;
  dataDir: string;
  /** Each user's token, minted once the first replica is up. */
  tokens: Record<string, string>;
  /** Clients for stop() to close. */
  clients: Client[];
  /** The config keys every replica has: the shared data directory, store, users and cluster.secret, and its own instance id. */
  base(instanceId: string): Record<string, unknown>;
  /** An MCP client of `user` on `connection` of one replica (Streamable HTTP), closed by stop(). */
  connect(gw: TestGateway, connection: string, user: string): Promise<Client>;
  /** Starts a replica in this process; the first one mints `tokens`. */
  replica(config: Record<string, unknown>, options?: GatewayOptions): Promise<TestGateway>;
  stop(): Promise<void>;
}

export async function startStoreReplicas(name: string, users: Record<string, string[]>): Promise<StoreReplicas> {
  const store = postgresTestStore();
  const echo = await startEchoServer();
  const dataDir = mkdtempSync(join(tmpdir(), `portcullis-${name}-`));
  const tokens: Record<string, string> = {};
  const clients: Client[] = [];
  const replicas: TestGateway[] = [];
  return {
    store,
    echo,
    dataDir,
    tokens,
    clients,
    base: (instanceId) => ({ dataDir, store: store.url, recording: { instanceId }, identity: { dev: { users } }, cluster: { secret: replicaSecret } }),
    connect: async (gw, connection, user) => {
      const client = new Client({ name: `${name}-${user}`, version: '1.0.0' });
      clients.push(client);
      await client.connect(new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: { authorization: `Bearer ${tokens[user]}` } } }));
      return client;
    },
    replica: async (config, options) => {
      const gw = await startTestGateway(config, options);
      replicas.push(gw);
      if (replicas.length === 1) for (const user of Object.keys(users)) tokens[user] = await gw.tokenFor(user);
      return gw;
    },
    stop: async () => {
      for (const c of clients) await c.close().catch(() => {});
      for (const gw of replicas) await gw.stop();
      await echo.stop();
      await store.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
