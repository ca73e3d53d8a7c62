import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { PostgresChangeBus } from '../../src/cluster/change-bus.js';
import { postgresTestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Notifications as PostgreSQL takes them: a payload is limited in bytes (under 8000), and text that is not ASCII
 * takes more bytes than characters. What is published at once goes out in as many notifications as it takes; only
 * a change too big to go even alone is left out, and said.
 */
describe('change bus: batches', () => {
  const ts = postgresTestStore();
  const secret = 'change-bus-batches-secret-0123456789abcdef';
  const logged: Array<{ level: number; msg: string; kind?: string }> = [];
  const log = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line) as (typeof logged)[number]);
        done();
      },
    }),
  );
  let sender: PostgresChangeBus;
  let receiver: PostgresChangeBus;
  const got: string[] = [];

  before(async () => {
    sender = new PostgresChangeBus({ url: ts.url, instanceId: 'sender', log, secret });
    receiver = new PostgresChangeBus({ url: ts.url, instanceId: 'receiver', log: pino({ level: 'silent' }), secret });
    await Promise.all([sender.ready, receiver.ready]);
    for (const kind of ['review', 'access', 'session'] as const) receiver.on(kind, (c) => got.push(`${kind}:${c.id}`));
  });
  after(async () => {
    await sender?.close();
    await receiver?.close();
    await ts.destroy();
  });

  /** What arrived up to a last decision published after the others (one channel, in commit order: all before it did). */
  async function receivedUpTo(last: string): Promise<string[]> {
    await waitFor(() => got.includes(last), `the notification of ${last}`);
    const arrived = got.splice(0);
    return arrived;
  }

  it('sends a decision published among live-view events whose text is not ASCII, in as many notifications as they take', async () => {
    // Three bytes a character: 40 of these are far over a payload's 8000 bytes, though under 7500 characters.
    const reason = 'サーバーが終了しました：接続がリセットされました。'.repeat(2);
    const closed = (id: string) => ({ event: { type: 'session-closed', id, subject: 'user', reason }, owner: { subject: 'user', issuer: 'https://idp' } });
    const ids = Array.from({ length: 40 }, (_, i) => `s${i}`);
    sender.publish('review', 'rv-decided');
    for (const id of ids) sender.publish('session', id, closed(id));
    sender.publish('access', 'ac-last');
    assert.deepEqual(await receivedUpTo('access:ac-last'), ['review:rv-decided', ...ids.map((id) => `session:${id}`), 'access:ac-last']);
    assert.deepEqual(logged, [], 'nothing was dropped');
  });

  it('drops only a live-view event too big to go even alone, and says so with its kind', async () => {
    sender.publish('review', 'rv-before');
    // 4000 characters, 8000 bytes.
    sender.publish('session', 's-huge', { event: { type: 'session-opened', id: 's-huge', description: 'é'.repeat(4000) } });
    sender.publish('session', 's-small', { event: { type: 'session-opened', id: 's-small' } });
    sender.publish('access', 'ac-after');
    assert.deepEqual(await receivedUpTo('access:ac-after'), ['review:rv-before', 'session:s-small', 'access:ac-after']);
    const dropped = logged.splice(0);
    assert.equal(dropped.length, 1, JSON.stringify(dropped));
    assert.equal(dropped[0]!.kind, 'session');
    assert.match(dropped[0]!.msg, /too big/);
  });

  it('says it loudly (an error) when a decision cannot go even alone: the others act on it only at their reconciliation', async () => {
    // No decision's id is anywhere near this long (they are ids and names of at most 64 characters).
    sender.publish('review', 'r'.repeat(8000));
    sender.publish('review', 'rv-next');
    assert.deepEqual(await receivedUpTo('review:rv-next'), ['review:rv-next']);
    const dropped = logged.splice(0);
    assert.equal(dropped.length, 1, JSON.stringify(dropped));
    assert.equal(dropped[0]!.kind, 'review');
    assert.equal(dropped[0]!.level, 50, 'logged as an error');
    assert.match(dropped[0]!.msg, /reconciliation/);
  });
});
