import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditRecord } from '../../src/audit/sink.js';
import type { Store } from '../../src/store/store.js';
import { allEvents } from './recorded.js';

/**
 * An HTTP collector in the test (the shape of Splunk HEC's raw endpoint: JSON lines POSTed with a token header): it
 * keeps every record of every batch it took, in arrival order, and can be told to answer 500 for a while.
 */
export class AuditCollector {
  readonly records: AuditRecord[] = [];
  /** Requests answered 500 (while `failing`). */
  refused = 0;
  /** Answer 500 to every request while true. */
  failing = false;
  /** While true, requests are held unanswered (a sink that takes a connection and never answers); `release` answers them. */
  hanging = false;
  readonly #held: Array<() => void> = [];
  /** The Authorization header of each request taken. */
  readonly authorizations: string[] = [];
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<AuditCollector> {
    const server = createServer();
    const collector = new AuditCollector(server);
    server.on('request', (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        if (collector.hanging) {
          // Answered 503 once released: the shipper sends the batch again.
          collector.#held.push(() => res.writeHead(503).end());
          return;
        }
        if (collector.failing) {
          collector.refused++;
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"text":"Internal Server Error","code":8}');
          return;
        }
        collector.authorizations.push(req.headers.authorization ?? '');
        for (const line of body.split('\n')) if (line) collector.records.push(JSON.parse(line) as AuditRecord);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return collector;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/services/collector/raw`;
  }

  /** Requests held unanswered now. */
  get held(): number {
    return this.#held.length;
  }

  /** Stops holding requests and answers those held (503: not taken). */
  release(): void {
    this.hanging = false;
    for (const answer of this.#held.splice(0)) answer();
  }

  /** The records of one session, in the order they arrived (duplicates included). */
  of(session: string): AuditRecord[] {
    return this.records.filter((r) => r.session === session);
  }

  /** Whether the session's close (its last event) has arrived. */
  closed(session: string): boolean {
    return this.records.some((r) => r.session === session && r.event === 'close');
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Every recorded event of the session is among `records` (what a sink took), each first seen in order (a duplicate
 * only where a batch was sent again), with its hash and its payload as recorded, the close among them.
 */
export async function assertShippedWhole(store: Store, records: readonly AuditRecord[], session: string): Promise<void> {
  const events = await allEvents(store, session);
  const first = new Map<number, AuditRecord>();
  for (const r of records) if (!first.has(r.seq)) first.set(r.seq, r);
  assert.deepEqual(
    [...first.keys()],
    events.map((e) => e.seq),
    `every event of ${session}, each first seen in order`,
  );
  assert.deepEqual(
    [...first.values()].map((r) => [r.hash, r.payload]),
    events.map((e) => [e.hash, JSON.parse(e.payload)]),
    `each event of ${session} with its hash and its payload as recorded`,
  );
  assert.equal(events.at(-1)?.kind, 'close', `the close of ${session} is among them`);
}
