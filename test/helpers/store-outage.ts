import { type EchoServer, startEchoServer } from './echo-server.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { type LockableTestStore, lockableSqliteStore } from './stores.js';

/** A gateway whose recording store can be taken down (its write lock held by another process), and its echo server. */
export interface StoreOutage {
  store: LockableTestStore;
  echo: EchoServer;
  gw: TestGateway;
  /** Lets go of the lock, then stops the gateway and the echo server and removes the store. */
  stop(): Promise<void>;
}

/**
 * Starts an echo server and a gateway recording into a fresh SQLite store, with `config(echo)` (the connections; the
 * store is set here). The recorder probes a failed store every 100ms, so it is back soon after `store.unlock()`.
 */
export async function startStoreOutage(config: (echo: EchoServer) => Record<string, unknown>): Promise<StoreOutage> {
  const store = lockableSqliteStore();
  let echo: EchoServer | undefined;
  let gw: TestGateway | undefined;
  const stop = async () => {
    store.unlock();
    await gw?.stop();
    await echo?.stop();
    await store.destroy();
  };
  try {
    echo = await startEchoServer();
    gw = await startTestGateway({ ...config(echo), store: store.url }, { recorderTimings: { probeMs: 100, sweepMs: 60_000 } });
    return { store, echo, gw, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
