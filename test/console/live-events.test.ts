import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { LiveEvents } from '../../src/console/live-events.js';
import type { Session } from '../../src/session/session.js';
import { waitFor } from '../helpers/wait.js';

/** The console's event stream with a client that stops reading: it is let go, and the others are served on. */
describe('LiveEvents and a client that does not read', () => {
  it('ends the stream of a client with over 1 MiB waiting, and keeps the others', async () => {
    const live = new LiveEvents();
    const server = createServer((req, res) =>
      live.subscribe(req, res, { subject: req.url!.slice(1), issuer: 'i', groups: [] }, true, { idHash: req.url!, expiresAtUs: Number.MAX_SAFE_INTEGER }),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      // A reader that keeps up, and a socket that asks for the stream and then never reads a byte.
      const reading = await fetch(`http://127.0.0.1:${port}/reader`);
      let read = 0;
      void (async () => {
        for await (const chunk of reading.body!) read += chunk.length;
      })();
      const stuck = connect(port, '127.0.0.1');
      stuck.write('GET /stuck HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      stuck.pause();
      await waitFor(() => live.listeners === 2, 'both subscribed');
      const closed = once(stuck, 'close');
      // Sessions opening, each event 8 KiB: the kernel's socket buffers fill first, then the gateway's.
      const session = { id: 's', connection: 'c'.repeat(8192), identity: { subject: 'x', issuer: 'i', groups: [] } } as unknown as Session;
      for (let i = 0; i < 20_000 && live.listeners === 2; i++) {
        live.opened(session);
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      assert.equal(live.listeners, 1, 'the stuck one is gone');
      stuck.resume();
      await closed;
      const before = read;
      live.reviewsChanged();
      await waitFor(() => read > before, 'the reader still gets events');
    } finally {
      live.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
