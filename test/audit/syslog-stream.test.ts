import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { SyslogStream, type SyslogTarget } from '../../src/audit/syslog/stream.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The syslog connection's delivery rules against a TCP receiver in the test that can misbehave on cue: what it
 * re-sends after a receiver dropped the connection, and that a receiver dropping a fresh connection gets nothing
 * acknowledged. (Against rsyslog itself: syslog-rsyslog.test.ts.)
 */

interface Connection {
  socket: Socket;
  text: string;
}

let server: Server;
let port: number;
const connections: Connection[] = [];
/** What the receiver does with a new connection: take it, or drop it at once. */
let behaviour: 'take' | 'drop' = 'take';

before(async () => {
  server = createServer((socket) => {
    if (behaviour === 'drop') {
      socket.destroy();
      return;
    }
    const c: Connection = { socket, text: '' };
    connections.push(c);
    socket.on('data', (d: Buffer) => (c.text += d.toString()));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});
after(() => server.close());

/** `confirmMs`: long where the test needs the drop seen within it (the receiver runs in this process's event loop). */
function stream(confirmMs = 100): SyslogStream {
  const target: SyslogTarget = {
    host: '127.0.0.1',
    port,
    connectTimeoutMs: 5000,
    writeTimeoutMs: 5000,
    confirmMs,
    resendWindowMs: 60_000,
    resendMaxBytes: 1 << 20,
  };
  return new SyslogStream(target, pino({ level: 'silent' }));
}

const frame = (text: string) => `${text.length} ${text}`;

test('after the receiver drops a connection, what it took recently goes again, first, on the next one', async () => {
  const s = stream();
  await s.deliver([frame('a'), frame('b')]);
  await waitFor(() => connections.at(-1)?.text === '1 a1 b', 'the receiver to read a and b');
  const first = connections.at(-1)!;
  // The receiver goes away (a restart): it may not have passed on what it read.
  first.socket.destroy();
  await waitFor(() => s.pendingResend === 2, 'the sender to see the connection fail');
  await s.deliver([frame('c')]);
  const second = connections.at(-1)!;
  assert.notEqual(second, first);
  await waitFor(() => second.text === '1 a1 b1 c', `a, b again, then c (got ${JSON.stringify(second.text)})`);
  assert.equal(s.pendingResend, 0);
  await s.close();
});

test('a receiver that drops a fresh connection gets nothing acknowledged; the batch goes once it takes connections again', async () => {
  const s = stream(5000);
  behaviour = 'drop';
  await assert.rejects(s.deliver([frame('x')]), /dropped the connection|closed|ECONNRESET|EPIPE/);
  behaviour = 'take';
  const before = connections.length;
  // The caller (the shipper) sends the refused batch again.
  await s.deliver([frame('x')]);
  await waitFor(() => connections.length > before && connections.at(-1)!.text === '1 x', 'x on a new connection');
  await s.close();
});
