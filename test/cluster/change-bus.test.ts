import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { PostgresChangeBus } from '../../src/cluster/change-bus.js';
import { postgresSql, postgresTestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/** The change bus's listening connection under a database that keeps dropping it. */

describe('change bus: reconnecting', () => {
  const ts = postgresTestStore();
  let bus: PostgresChangeBus | undefined;
  after(async () => {
    await bus?.close();
    await ts.destroy();
  });

  it('waits ever longer when the connection drops each time right after it is up, rather than reconnecting in a storm', async () => {
    const retries: number[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          const entry = JSON.parse(line) as { msg?: string; retryInMs?: number };
          if (entry.msg?.startsWith('the change notification connection dropped')) retries.push(entry.retryInMs!);
        }
        done();
      },
    });
    let resyncs = 0;
    bus = new PostgresChangeBus({ url: ts.url, instanceId: 'bus-test', log: pino({ level: 'warn' }, sink), reconnectMs: { min: 20, max: 60_000 } });
    bus.onResync(() => resyncs++);
    await bus.ready;
    assert.equal(resyncs, 1);
    for (let drop = 1; drop <= 4; drop++) {
      // Each connection is cut as soon as it is up (a flapping network or a pooler that keeps closing it).
      await postgresSql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'portcullis-listen' AND query = $1", [
        `LISTEN "${bus.channel}"`,
      ]);
      await waitFor(() => retries.length === drop && resyncs === drop + 1, `reconnection ${drop}`);
    }
    assert.deepEqual(retries, [20, 40, 80, 160]);
  });
});
