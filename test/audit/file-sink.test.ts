import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { AuditRecord } from '../../src/audit/sink.js';
import { fileSinkKind } from '../../src/audit/sinks/file.js';
import { closeClient, connectClient, edgeTransport } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/** The file sink: JSON lines appended and fsync'd, rotated past a size keeping `keep` old files. */

function record(seq: number): AuditRecord {
  return {
    instance: 'gw-a',
    session: 's-1',
    seq,
    time: '2026-12-05T10:00:00.000000Z',
    kind: 'message',
    event: 'message',
    direction: 'toServer',
    connection: 'everything',
    subject: 'alice',
    edge: 'streamable-http',
    payload: { jsonrpc: '2.0', id: seq, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(100) } } },
    hash: 'a'.repeat(64),
  };
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as AuditRecord).seq);

describe('audit file sink', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rotates past rotateAt between batches, keeping `keep` old files, newest first, no record split or lost among them', async () => {
    const path = join(dir, 'audit.jsonl');
    const config = fileSinkKind.schema({ env: {}, readFile: () => '' }).parse({ path, rotateAt: '1KiB', keep: 2 });
    const sink = fileSinkKind.create(config, { log: pino({ level: 'silent' }), name: 'local' });
    const size = Buffer.byteLength(`${JSON.stringify(record(0))}\n`);
    assert.ok(size > 256 && size < 512, `a record is ${size} bytes: two fill a 1 KiB file, a third rotates it`);
    for (let seq = 0; seq < 12; seq += 2) await sink.send([record(seq), record(seq + 1)]);
    await sink.close();
    // Six batches of two: each file holds one batch (a second would pass 1 KiB); the first three were rotated away.
    assert.deepEqual(lines(path), [10, 11]);
    assert.deepEqual(lines(`${path}.1`), [8, 9]);
    assert.deepEqual(lines(`${path}.2`), [6, 7]);
    assert.equal(existsSync(`${path}.3`), false, 'no more than keep old files');
    for (const p of [path, `${path}.1`, `${path}.2`]) assert.ok(statSync(p).size <= 1024);

    const again = fileSinkKind.create(config, { log: pino({ level: 'silent' }), name: 'local' });
    await again.send([record(12)]);
    await again.close();
    assert.deepEqual(lines(path), [12], 'a restarted sink sees the size on disk and rotates before writing past it');
    assert.deepEqual(lines(`${path}.1`), [10, 11]);

    const none = fileSinkKind.create(fileSinkKind.schema({ env: {}, readFile: () => '' }).parse({ path, rotateAt: '1KiB', keep: 0 }), {
      log: pino({ level: 'silent' }),
      name: 'local',
    });
    await none.send([record(13), record(14)]);
    await none.close();
    assert.deepEqual(lines(path), [13, 14], 'keep: 0 starts the file afresh');
  });

  it('a write that fails rejects (to be retried), naming the file', async () => {
    const path = join(dir, 'missing-dir', 'audit.jsonl');
    const sink = fileSinkKind.create(fileSinkKind.schema({ env: {}, readFile: () => '' }).parse({ path }), { log: pino({ level: 'silent' }), name: 'local' });
    await assert.rejects(sink.send([record(0)]), (err: Error) => err.message.includes(path) && /ENOENT/.test(err.message));
  });

  it('a gateway writes every event of a real session to the file, in order', async () => {
    const path = join(dir, 'gateway.jsonl');
    const gw = await startTestGateway({
      audit: { sinks: [{ name: 'local', file: { path } }] },
      connections: { everything: { stdio: everythingStdio() } },
    });
    try {
      const transport = edgeTransport('streamable-http', gw, 'everything');
      const { client } = await connectClient(transport);
      for (let i = 0; i < 3; i++) await client.callTool({ name: 'echo', arguments: { message: `file ${i}` } });
      await closeClient(client, transport);
      const records = () =>
        existsSync(path)
          ? readFileSync(path, 'utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as AuditRecord)
          : [];
      await waitFor(() => records().some((r) => r.event === 'close'), 'the close to be written');
      const session = records().find((r) => r.event === 'close')!.session;
      const events = await allEvents(gw.gateway.recorder!.store, session);
      assert.deepEqual(
        records()
          .filter((r) => r.session === session)
          .map((r) => [r.seq, r.hash]),
        events.map((e) => [e.seq, e.hash]),
      );
    } finally {
      await gw.stop();
    }
  });
});
