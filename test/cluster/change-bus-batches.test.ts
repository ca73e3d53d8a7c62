import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { PostgresChangeBus } from '../../src/cluster/change-bus.js';
import { maxNotifyBytes, notificationBatches, type QueuedChange } from '../../src/cluster/notification-batches.js';
import { NotificationSigner } from '../../src/cluster/notification-signer.js';
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

/** A signer that counts its signatures: each notification is to be signed once, not once per change added to it. */
class CountingSigner extends NotificationSigner {
  signed = 0;
  override sign(body: string): string {
    this.signed++;
    return super.sign(body);
  }
}

describe('notification batches at the limit of a payload', () => {
  const secret = 'notification-batches-secret-0123456789abcdef';
  const bytes = (s: string) => Buffer.byteLength(s);
  /** What a payload carries, as a receiver with the secret opens it. */
  const opened = (payload: string) => {
    const body = new NotificationSigner(secret).open(payload);
    assert.ok('body' in body, JSON.stringify(body));
    return JSON.parse(body.body) as { f: string; c: unknown[] };
  };
  // Text that is not ASCII (two bytes a character), then a decision whose id sets the size to the byte.
  const event: QueuedChange = ['session', 's-1', { event: { type: 'session-closed', reason: 'é'.repeat(1000) } }];
  const decision = (idBytes: number): QueuedChange => ['review', 'r'.repeat(idBytes)];
  /** The id length that makes a payload of `changes` and that decision exactly `total` bytes. */
  const idFor = (changes: QueuedChange[], total: number, signed = true) =>
    total - bytes(notificationBatches('replica-a', [...changes, decision(0)], signed ? new NotificationSigner(secret) : undefined).payloads[0]!);

  it('fills a notification to exactly the limit, and starts another one when a change is one byte over', () => {
    const n = idFor([event], maxNotifyBytes);
    const signer = new CountingSigner(secret);
    const full = notificationBatches('replica-a', [event, decision(n)], signer);
    assert.equal(full.payloads.length, 1);
    assert.equal(bytes(full.payloads[0]!), maxNotifyBytes);
    const carried = opened(full.payloads[0]!);
    assert.equal(carried.f, 'replica-a');
    assert.deepEqual(carried.c, [event, decision(n)]);
    assert.deepEqual(full.tooBig, []);

    const over = notificationBatches('replica-a', [event, decision(n + 1)], signer);
    assert.deepEqual(
      over.payloads.map((p) => opened(p).c),
      [[event], [decision(n + 1)]],
    );
    assert.deepEqual(over.tooBig, []);
    assert.equal(signer.signed, 3, 'each notification signed once');
  });

  it('sends a change that alone is exactly at the limit; leaves out one a byte over, and only that one', () => {
    const n = idFor([], maxNotifyBytes);
    const alone = notificationBatches('replica-a', [decision(n)], new NotificationSigner(secret));
    assert.equal(alone.payloads.length, 1);
    assert.equal(bytes(alone.payloads[0]!), maxNotifyBytes);
    assert.deepEqual(opened(alone.payloads[0]!).c, [decision(n)]);

    const small: QueuedChange = ['access', 'ac-1'];
    const around = notificationBatches('replica-a', [event, decision(n + 1), small], new NotificationSigner(secret));
    assert.deepEqual(around.tooBig, [decision(n + 1)]);
    assert.deepEqual(
      around.payloads.map((p) => opened(p).c),
      [[event, small]],
    );
  });

  it('unsigned, sizes the same way without the signature', () => {
    const n = idFor([], maxNotifyBytes, false);
    const alone = notificationBatches('replica-a', [decision(n)], undefined);
    assert.equal(bytes(alone.payloads[0]!), maxNotifyBytes);
    assert.deepEqual((JSON.parse(alone.payloads[0]!) as { c: unknown }).c, [decision(n)]);
    assert.deepEqual(notificationBatches('replica-a', [decision(n + 1)], undefined), { payloads: [], tooBig: [decision(n + 1)] });
  });

  it('serializes and signs each notification once, however many changes it carries', () => {
    const changes: QueuedChange[] = Array.from({ length: 1000 }, (_, i) => ['exchange', `s_${'x'.repeat(24)}${i}`, [i, i + 3]]);
    const signer = new CountingSigner(secret);
    const { payloads, tooBig } = notificationBatches('replica-a', changes, signer);
    assert.deepEqual(tooBig, []);
    assert.ok(payloads.length > 1 && payloads.every((p) => bytes(p) <= maxNotifyBytes));
    assert.deepEqual(
      payloads.flatMap((p) => opened(p).c),
      changes,
    );
    assert.equal(signer.signed, payloads.length);
  });
});
