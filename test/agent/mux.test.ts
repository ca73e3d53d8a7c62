import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { controlFrame, creditFrame, dataFrame, decodeFrame, FrameError } from '../../src/agent/frames.js';
import { type FrameSink, Mux } from '../../src/agent/mux.js';
import { waitFor } from '../helpers/wait.js';

/** The tunnel's frames and multiplexer: whole messages per channel, fairness between channels, credit, limits. */

/**
 * Two multiplexers joined by a simulated socket: frames are delivered on a later turn of the event loop, and until
 * then count as buffered, as a WebSocket's do.
 */
function pair(options: ConstructorParameters<typeof Mux>[1] = {}) {
  const wire: Array<{ to: 'a' | 'b'; frame: Buffer }> = [];
  const inFlight = { a: 0, b: 0 };
  const sent = { a: [] as Buffer[], b: [] as Buffer[] };
  const sink = (from: 'a' | 'b'): FrameSink => ({
    send(frame) {
      sent[from].push(frame);
      inFlight[from] += frame.length;
      wire.push({ to: from === 'a' ? 'b' : 'a', frame });
      setImmediate(deliver);
    },
    get bufferedAmount() {
      return inFlight[from];
    },
  });
  const a = new Mux(sink('a'), options);
  const b = new Mux(sink('b'), options);
  function deliver(): void {
    const next = wire.shift();
    if (next === undefined) return;
    inFlight[next.to === 'a' ? 'b' : 'a'] -= next.frame.length;
    (next.to === 'a' ? a : b).receive(next.frame);
  }
  return { a, b, sent };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('tunnel frames', () => {
  it('round-trip each kind', () => {
    assert.deepEqual(decodeFrame(controlFrame(7, { type: 'open', connection: 'fs' })), {
      type: 'control',
      channel: 7,
      body: { type: 'open', connection: 'fs' },
    });
    const d = decodeFrame(dataFrame(4_000_000_000, true, Buffer.from('{"a":1}')));
    assert.deepEqual([d.type, d.channel, (d as { final: boolean }).final, String((d as { chunk: Buffer }).chunk)], ['data', 4_000_000_000, true, '{"a":1}']);
    assert.deepEqual(decodeFrame(creditFrame(3, 65536)), { type: 'credit', channel: 3, bytes: 65536 });
  });

  it('refuse what is not a frame', () => {
    for (const bad of [
      Buffer.alloc(3),
      Buffer.from([9, 0, 0, 0, 1]),
      Buffer.concat([Buffer.from([1, 0, 0, 0, 1]), Buffer.from('[1]')]),
      Buffer.from([3, 0, 0, 0, 1, 0]),
    ]) {
      assert.throws(() => decodeFrame(bad), FrameError);
    }
  });
});

describe('the tunnel multiplexer', () => {
  it('delivers whole messages in order per channel, however they are cut', async () => {
    const { a, b } = pair({ chunkSize: 7 });
    const got: string[] = [];
    b.channel(1).onmessage = (t) => got.push(t);
    const texts = ['{"jsonrpc":"2.0","id":1,"method":"ping"}', '', `{"text":"${'é😀'.repeat(50)}"}`, 'x'];
    for (const t of texts) a.channel(1).send(t);
    await settle();
    assert.deepEqual(got, texts);
  });

  it('a huge message on one channel does not hold up a small one on another', async () => {
    const { a, b } = pair({ chunkSize: 16 << 10, window: 64 << 10, highWater: 64 << 10 });
    const order: string[] = [];
    let hugeChunksBefore = -1;
    let hugeDone = false;
    b.channel(1).onmessage = () => {
      hugeDone = true;
      order.push('huge');
    };
    b.channel(2).onmessage = () => {
      order.push('small');
      hugeChunksBefore = hugeDone ? Infinity : 0;
    };
    a.channel(1).send('x'.repeat(8 << 20));
    a.channel(2).send('{"small":true}');
    await waitFor(() => order.length === 2, 'both messages to arrive', 60_000);
    assert.deepEqual(order, ['small', 'huge']);
    assert.equal(hugeChunksBefore, 0);
  });

  it('never has more than a window (and one chunk) unacknowledged on a channel', async () => {
    const window = 32 << 10;
    const chunkSize = 8 << 10;
    const { a, b, sent } = pair({ chunkSize, window, highWater: 1 << 30 });
    let received = 0;
    b.channel(5).onmessage = (t) => (received = t.length);
    a.channel(5).send('y'.repeat(1 << 20));
    // Before any credit can come back (nothing delivered yet), only the window went out.
    const dataBytes = () =>
      sent.a
        .map((f) => decodeFrame(f))
        .filter((f) => f.type === 'data')
        .reduce((n, f) => n + (f as { chunk: Buffer }).chunk.length, 0);
    assert.ok(dataBytes() <= window + chunkSize, `${dataBytes()} bytes sent before any credit`);
    await waitFor(() => received === 1 << 20, 'the whole message to arrive', 60_000);
  });

  it('acknowledges half a window at a time, not every message', async () => {
    const { a, b, sent } = pair({ window: 64 << 10 });
    let got = 0;
    b.channel(1).onmessage = () => got++;
    for (let i = 0; i < 100; i++) a.channel(1).send('{"jsonrpc":"2.0","method":"notifications/progress"}');
    await settle();
    assert.equal(got, 100);
    assert.equal(sent.b.filter((f) => decodeFrame(f).type === 'credit').length, 0, 'five kilobytes owe no credit frame yet');
    a.channel(1).send('w'.repeat(40 << 10));
    await settle();
    const credits = sent.b.map((f) => decodeFrame(f)).filter((f) => f.type === 'credit');
    assert.equal(credits.length, 1);
    assert.ok((credits[0] as { bytes: number }).bytes >= 32 << 10);
  });

  it('closes a channel whose message is over the limit, on both sides, and keeps the others', async () => {
    const { a, b } = pair({ chunkSize: 1024, maxMessageBytes: 10_000 });
    const closed: string[] = [];
    const sender = a.channel(1);
    sender.onclose = (r) => closed.push(`a:${r}`);
    b.channel(1).onclose = (r) => closed.push(`b:${r}`);
    const other: string[] = [];
    b.channel(2).onmessage = (t) => other.push(t);
    sender.send('z'.repeat(20_000));
    a.channel(2).send('still here');
    await settle();
    assert.deepEqual(closed.sort(), ['a:a message larger than 10000 bytes', 'b:a message larger than 10000 bytes']);
    assert.deepEqual(other, ['still here']);
    assert.throws(() => sender.send('again'), /channel 1 is closed/);
  });

  it('ends every channel when the tunnel goes, with the reason', () => {
    const { a } = pair();
    const reasons: string[] = [];
    for (const id of [1, 2, 3]) a.channel(id).onclose = (r) => reasons.push(r);
    a.closeAll('the tunnel dropped');
    assert.deepEqual(reasons, ['the tunnel dropped', 'the tunnel dropped', 'the tunnel dropped']);
    assert.equal(a.channels, 0);
  });

  it('hands control frames to its owner', async () => {
    const { a, b } = pair();
    const seen: Array<[number, Record<string, unknown>]> = [];
    b.oncontrol = (channel, body) => seen.push([channel, body]);
    a.sendControl(0, { type: 'hello', agent: 'vpc-prod', connections: ['aws'] });
    a.sendControl(9, { type: 'open', connection: 'aws' });
    await settle();
    assert.deepEqual(seen, [
      [0, { type: 'hello', agent: 'vpc-prod', connections: ['aws'] }],
      [9, { type: 'open', connection: 'aws' }],
    ]);
  });

  it('withholds credit from a paused channel, so its sender stops after one window, and drains once resumed', async () => {
    const { a, b } = pair({ window: 64 << 10, chunkSize: 8 << 10 });
    const sender = a.channel(1);
    const receiver = b.channel(1);
    let received = 0;
    let drained = 0;
    receiver.onmessage = (t) => (received += t.length);
    sender.ondrain = () => drained++;
    receiver.pause();
    const message = 'x'.repeat(1000);
    for (let i = 0; i < 1000; i++) sender.send(message);
    for (let i = 0; i < 20; i++) await settle();
    // Credit may go below zero by the last chunk sent on it.
    assert.ok(received <= (64 << 10) + (8 << 10), `a paused receiver took ${received} bytes: no more than one window and a chunk`);
    assert.equal(sender.queuedBytes, 1_000_000 - received, 'the rest waits, counted, at the sender');
    assert.equal(drained, 0);
    receiver.resume();
    const deadline = Date.now() + 10_000;
    while (received < 1_000_000 && Date.now() < deadline) await settle();
    assert.equal(received, 1_000_000);
    assert.equal(sender.queuedBytes, 0);
    assert.ok(drained >= 1, 'the sender is told its queue has gone out');
  });
});
