import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { PostgresChangeBus } from '../../src/cluster/change-bus.js';
import { ResettingProxy } from '../helpers/resetting-proxy.js';
import { postgresTestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Sending notifications when the database does not take them: a decision is sent again, a live-view event is not
 * (twice would show twice), a batch that keeps failing is dropped so that later ones are not held behind it, and
 * closing sends what was published while a send was under way.
 */
describe('change bus: sending', () => {
  const ts = postgresTestStore();
  const secret = 'change-bus-sending-secret-0123456789abcdef';
  const buses: PostgresChangeBus[] = [];
  let proxy: ResettingProxy;
  let receiver: PostgresChangeBus;
  const received: string[] = [];
  const logged: string[] = [];
  const log = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(String((JSON.parse(line) as { msg?: string }).msg));
        done();
      },
    }),
  );

  before(async () => {
    const url = new URL(ts.url);
    proxy = new ResettingProxy(Number(url.port || 5432));
    await proxy.start();
    receiver = new PostgresChangeBus({ url: ts.url, instanceId: 'receiver', log, secret });
    buses.push(receiver);
    await receiver.ready;
    for (const kind of ['review', 'session'] as const) receiver.on(kind, (c) => received.push(`${kind}:${c.id}`));
  });
  after(async () => {
    for (const b of buses) await b.close();
    await proxy?.stop();
    await ts.destroy();
  });

  /** A sender that reaches the database through the proxy (its listening connection too: it retries that apart). */
  async function sender(instanceId: string): Promise<PostgresChangeBus> {
    const url = new URL(ts.url);
    url.host = `127.0.0.1:${proxy.port}`;
    proxy.mode = 'pass';
    const bus = new PostgresChangeBus({ url: url.toString(), instanceId, log, secret, reconnectMs: { min: 50, max: 200 } });
    buses.push(bus);
    await bus.ready;
    return bus;
  }

  it('sends a decision again once the database takes it, drops a live-view event, and drops a batch after three failures', async () => {
    const bus = await sender('sender-1');
    proxy.mode = 'every';
    bus.publish('review', 'r-again');
    bus.publish('session', 's-dropped');
    await waitFor(() => logged.some((m) => m.startsWith('change notifications could not be sent; trying again')), 'a failed send');
    proxy.mode = 'pass';
    await waitFor(() => received.includes('review:r-again'), 'the decision sent again');
    // Failing three times in a row: dropped, and what is published after goes out.
    proxy.mode = 'every';
    const failuresBefore = logged.filter((m) => m.startsWith('change notifications could not be sent')).length;
    bus.publish('review', 'r-refused');
    await waitFor(() => logged.filter((m) => m.startsWith('change notifications could not be sent')).length >= failuresBefore + 3, 'three failed sends');
    assert.ok(
      logged.some((m) => m.includes('see them at their next reconciliation')),
      'the batch was dropped after three failures',
    );
    proxy.mode = 'pass';
    bus.publish('review', 'r-after');
    await waitFor(() => received.includes('review:r-after'), 'a later decision');
    assert.ok(!received.includes('session:s-dropped'), 'a live-view event is not sent again');
    assert.ok(!received.includes('review:r-refused'), 'the batch failing three times was dropped');
  });

  it('closing sends what was published while a send was under way', async () => {
    const bus = await sender('sender-2');
    bus.publish('review', 'c-first');
    // The first send is under way (it left on the next turn of the event loop); the second waits behind it.
    await new Promise((r) => setImmediate(r));
    bus.publish('review', 'c-second');
    await bus.close();
    await waitFor(() => received.includes('review:c-first') && received.includes('review:c-second'), 'both notifications');
  });
});
