import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import pg from 'pg';
import { type Change, PostgresChangeBus } from '../../src/cluster/change-bus.js';
import { postgresSql, postgresTestStore, postgresUrl } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/** The change bus: its listening connection under a database that keeps dropping it; what it takes as authentic. */

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

describe('change bus: notifications signed under cluster.secret', () => {
  const ts = postgresTestStore();
  const secret = 'change-bus-test-secret-0123456789abcdef';
  const buses: PostgresChangeBus[] = [];
  let listener: pg.Client | undefined;
  after(async () => {
    for (const b of buses) await b.close();
    await listener?.end();
    await ts.destroy();
  });

  it('delivers what a replica with the secret signed, and ignores what is unsigned, tampered, replayed or signed with another secret', async () => {
    const warnings: Array<{ msg?: string; kind?: string; why?: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) warnings.push(JSON.parse(line) as (typeof warnings)[number]);
        done();
      },
    });
    const bus = (instanceId: string, key: string | undefined, log = pino({ level: 'warn' }, sink)) => {
      const b = new PostgresChangeBus({ url: ts.url, instanceId, log, ...(key === undefined ? {} : { secret: key }) });
      buses.push(b);
      return b;
    };
    const receiver = bus('receiver', secret);
    const sender = bus('sender', secret, pino({ level: 'silent' }));
    const stranger = bus('stranger', 'another-secret-0123456789abcdefghijklmnop', pino({ level: 'silent' }));
    await Promise.all(buses.map((b) => b.ready));
    const got: Change[] = [];
    for (const kind of ['review', 'access', 'session'] as const) receiver.on(kind, (c) => got.push(c));
    // What goes over the channel, as anyone with a database login can read it.
    const seen: string[] = [];
    listener = new pg.Client({ connectionString: postgresUrl });
    await listener.connect();
    listener.on('notification', (n) => seen.push(n.payload ?? ''));
    await listener.query(`LISTEN "${receiver.channel}"`);

    sender.publish('review', 'r-signed');
    await waitFor(() => got.some((c) => c.id === 'r-signed'), 'the signed notification');
    const signed = seen.find((p) => p.includes('r-signed'))!;
    assert.match(signed, /^[A-Za-z0-9_-]{43}\./);
    assert.deepEqual(
      got.map((c) => [c.kind, c.id, c.from, c.verified]),
      [['review', 'r-signed', 'sender', true]],
    );

    const notify = (payload: string) => postgresSql('SELECT pg_notify($1, $2)', [receiver.channel, payload]);
    // Unsigned (twice: said once), as a database login could send it, even naming a replica.
    await notify(JSON.stringify({ f: 'sender', c: [['review', 'r-unsigned']] }));
    await notify(JSON.stringify({ f: 'sender', c: [['review', 'r-unsigned-2']] }));
    // Tampered: a signed notification with another id put in.
    await notify(signed.replace('r-signed', 'r-altered'));
    // Replayed as it was.
    await notify(signed);
    // A console event an attacker would like an auditor to see.
    await notify(JSON.stringify({ f: 'sender', c: [['session', 's-fake', { event: { type: 'session-opened' }, owner: { subject: 'x', issuer: 'y' } }]] }));
    // Signed, but under another secret (sent on a connection of its own: waited for, its order with the next unknown).
    stranger.publish('access', 'a-stranger');
    const ignoredKinds = () => warnings.filter((w) => w.msg?.startsWith('a change notification without a valid')).map((w) => w.kind);
    await waitFor(() => ignoredKinds().includes('access'), 'the notification signed under another secret to be ignored');
    // A good one last: once it is in, every earlier one has been delivered or dropped (one channel, in commit order).
    sender.publish('access', 'a-signed');
    await waitFor(() => got.some((c) => c.id === 'a-signed'), 'the last signed notification');
    assert.deepEqual(
      got.map((c) => c.id),
      ['r-signed', 'a-signed'],
    );
    assert.deepEqual(ignoredKinds().sort(), ['access', 'review', 'session'], 'once per kind');
    assert.match(warnings.find((w) => w.kind === 'review')!.msg!, /without a valid cluster\.secret signature was ignored/);
    assert.ok(!JSON.stringify(warnings).includes(secret));
  });

  it('without a secret, delivers notifications as unverified (the console then relays none of its session events)', async () => {
    const plain = new PostgresChangeBus({ url: ts.url, instanceId: 'plain-receiver', log: pino({ level: 'silent' }) });
    buses.push(plain);
    await plain.ready;
    const got: Change[] = [];
    plain.on('pin', (c) => got.push(c));
    await postgresSql('SELECT pg_notify($1, $2)', [plain.channel, JSON.stringify({ f: 'someone', c: [['pin', 'conn']] })]);
    await waitFor(() => got.length === 1, 'the unsigned notification');
    assert.equal(got[0]!.verified, false);
  });
});
