import type { PeerDirectory } from '../../src/cluster/peer-directory.js';
import { everythingStdio } from './everything.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { startTestIdp, type TestIdp } from './idp.js';
import { mcpHeaders, rawInitialize } from './raw-http.js';
import { type RoundRobin, startRoundRobin } from './round-robin.js';
import { postgresTestStore, type TestStore } from './stores.js';

/** The environment variable holding the pair's cluster.secret (a test may refer to it, or present it as a forgery). */
export const hopSecretVar = 'PORTCULLIS_TEST_CLUSTER_SECRET';
process.env[hopSecretVar] = 'cluster-secret-for-tests-0123456789abcdef';

/** The test's membership: instance id to base URL, filled as the replicas start, and moved by a test at will. */
export class TestPeers implements PeerDirectory {
  readonly addresses = new Map<string, string>();
  /** The replicas listed as serving (taking new sessions): what a test says, however stale. */
  readonly servingIds: string[] = [];
  /** Replicas missing from the last read (as one that just joined): found only by reading again (addressNow). */
  readonly unread = new Set<string>();
  /** While set, a read again waits for it (a slow store). */
  readHeld: Promise<void> | undefined;
  /** Reads again so far. */
  rereads = 0;
  addressOf(instanceId: string): string | undefined {
    return this.unread.has(instanceId) ? undefined : this.addresses.get(instanceId);
  }
  async addressNow(instanceId: string): Promise<string | undefined> {
    this.rereads++;
    await this.readHeld;
    this.unread.delete(instanceId);
    return this.addresses.get(instanceId);
  }
  serving(): string[] {
    return [...this.servingIds];
  }
  /** Runs `body` with `instanceId` at another address (undefined: gone from the membership), then puts it back. */
  async movedWhile<T>(instanceId: string, address: string | undefined, body: () => Promise<T>): Promise<T> {
    const was = this.addresses.get(instanceId)!;
    if (address === undefined) this.addresses.delete(instanceId);
    else this.addresses.set(instanceId, address);
    try {
      return await body();
    } finally {
      this.addresses.set(instanceId, was);
    }
  }
}

/**
 * Two replicas of one gateway (the everything server's `everything` connection, tool pins off) on one PostgreSQL
 * database, sharing cluster.secret, with the membership in `peers`, and a round-robin `front` before them; the users
 * `ada` and `bob` of a test IdP. Made before the suite, started in its `before` (start), ended in its `after` (stop).
 * The helpers are properties, so a test may take them out of the pair.
 */
export class HopPair {
  readonly peers = new TestPeers();
  idp!: TestIdp;
  store!: TestStore;
  a!: TestGateway;
  b!: TestGateway;
  front!: RoundRobin;
  /** The Authorization header of ada, and of bob (in group `eng`). */
  ada!: Record<string, string>;
  bob!: Record<string, string>;

  async start(): Promise<void> {
    this.idp = await startTestIdp();
    this.store = postgresTestStore();
    this.a = await this.replica();
    this.b = await this.replica();
    for (const gw of [this.a, this.b]) this.peers.addresses.set(gw.gateway.replicas.instance, gw.url);
    this.front = await startRoundRobin([this.a.url, this.b.url]);
    this.ada = { authorization: `Bearer ${await this.idp.sign({ sub: 'ada' })}` };
    this.bob = { authorization: `Bearer ${await this.idp.sign({ sub: 'bob', groups: ['eng'] })}` };
  }

  async stop(): Promise<void> {
    await this.front?.close();
    await this.a?.stop();
    await this.b?.stop();
    await this.store?.destroy();
    await this.idp?.stop();
  }

  /**
   * A replica of the pair's gateway (on its store, with its membership), with `extra`'s config sections besides its own.
   * One a test starts is its own to stop; it is not in the membership unless the test puts it there.
   */
  replica(extra: Record<string, unknown> = {}): Promise<TestGateway> {
    return startTestGateway(
      {
        ...extra,
        store: this.store.url,
        identity: { issuers: [{ issuer: this.idp.issuer, audiences: ['portcullis'] }] },
        cluster: { secret: `\${env:${hopSecretVar}}` },
        // Tool pins are off: which replica sees a tool first is not what these suites are about.
        connections: { everything: { stdio: everythingStdio(), tools: { pin: false } } },
      },
      { peers: this.peers },
    );
  }

  /** The replica that holds a session, and the other one. */
  readonly ownerAndOther = (sessionId: string): [TestGateway, TestGateway] => (this.a.gateway.sessions.get(sessionId) ? [this.a, this.b] : [this.b, this.a]);
  readonly headersFor = (sessionId: string, auth = this.ada) => ({ ...mcpHeaders, ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
  readonly call = (id: string, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) =>
    JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });
  /** A call of the echo tool in a legacy session, sent to `gw` with these headers. */
  readonly echoOn = (gw: TestGateway, headers: Record<string, string>) =>
    fetch(gw.mcp('everything'), { method: 'POST', headers, body: this.call('x', 'echo', { message: 'hi' }) });
  readonly endSession = (gw: TestGateway, sessionId: string) => fetch(gw.mcp('everything'), { method: 'DELETE', headers: this.headersFor(sessionId) });
  /** A session of ada's on `a`, ended once `body` is done with it (the owner is the replica it names). */
  readonly inSession = async (body: (sessionId: string, owner: TestGateway, other: TestGateway) => Promise<void>) => {
    const sessionId = await rawInitialize(this.a.mcp('everything'), this.ada);
    const [owner, other] = this.ownerAndOther(sessionId);
    try {
      await body(sessionId, owner, other);
    } finally {
      await this.endSession(owner, sessionId);
    }
  };
}
