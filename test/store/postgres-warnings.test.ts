import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openSessionRow } from '../../src/store/types.js';
import { runCli } from '../helpers/cli.js';
import { cliPath } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { freePort } from '../helpers/ports.js';
import { postgresTestStore, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A PostgreSQL store runs one query at a time per connection (pg 9 refuses overlapping ones, pg 8 warns), and no
 * process warning reaches the gateway's stderr as a plain-text line: the log is JSON lines.
 */

const overlapWarning = /already executing a query/;

describe('PostgreSQL store: no overlapping queries, warnings in the JSON log', () => {
  let store: TestStore;
  let dir: string;

  before(() => {
    store = postgresTestStore();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-pg-warnings-'));
  });
  after(async () => {
    await store.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('overlapping work on a fresh store emits no warning in this process', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const s = await store.open();
      try {
        // More concurrent calls than the pool has connections: every new connection is used at once.
        await Promise.all(
          Array.from({ length: 24 }, (_, i) =>
            i % 3 === 0
              ? s.write({
                  sessionsOpened: [
                    openSessionRow({ id: `overlap-${i}`, instanceId: 'gw', connection: 'c', subject: 'alice', openedAtUs: 1_790_000_000_000_000 + i }),
                  ],
                  events: [],
                  negotiated: [],
                  sealed: [],
                  ledger: [],
                  deletions: [],
                  dataKeys: [],
                })
              : i % 3 === 1
                ? s.listSessions({ limit: 10 })
                : s.heartbeat('gw', { nowUs: 1_790_000_000_000_000 + i }),
          ),
        );
      } finally {
        await s.close();
      }
      // A warning is emitted on the next tick after the call that causes it.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.map((w) => w.message),
      [],
    );
  });

  it('the CLI against PostgreSQL prints nothing on stderr', async (t) => {
    // A store of its own, holding what the gateway writes (the first test's bare rows would be reported as altered).
    const own = postgresTestStore();
    await (await own.open()).close();
    t.after(() => own.destroy());
    const configFile = join(dir, 'cli.yaml');
    writeFileSync(
      configFile,
      stringify({ dataDir: join(dir, 'data'), store: own.url, listen: '127.0.0.1:1', connections: { everything: { stdio: everythingStdio() } } }),
    );
    const r = await runCli(['sessions', 'verify', '--all', '--config', configFile]);
    assert.doesNotMatch(r.stderr, overlapWarning);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const list = await runCli(['sessions', 'list', '--config', configFile]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stderr, '');
  });

  it('the gateway on PostgreSQL logs only JSON lines, a process warning included', async () => {
    const port = await freePort();
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(
      configFile,
      stringify({
        dataDir: join(dir, 'gw-data'),
        store: store.url,
        listen: `127.0.0.1:${port}`,
        shutdown: { drainDelay: 0 },
        connections: { everything: { stdio: everythingStdio() } },
      }),
    );
    // A warning some dependency emits once the gateway runs (told by SIGUSR2, once it is running): it must arrive in
    // the log as JSON.
    const emitLater = `data:text/javascript,process.on('SIGUSR2', () => process.emitWarning('a test warning', 'TestWarning'))`;
    const child = spawn(process.execPath, ['--import', emitLater, cliPath, 'gateway', '--config', configFile], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    try {
      await waitFor(() => stdout.includes('Portcullis is running') || child.exitCode !== null, 'the gateway to start', 20_000);
      assert.equal(child.exitCode, null, stderr);
      // Overlapping work: concurrent API reads while the recorder heartbeats and sweeps.
      await Promise.all(Array.from({ length: 12 }, () => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.text())));
      child.kill('SIGUSR2');
      await waitFor(() => stderr.includes('a test warning'), 'the test warning in the log', 10_000);
    } finally {
      // A drained stop: its messages are log lines too.
      const exited = child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : Promise.resolve();
      child.kill('SIGTERM');
      await exited;
    }
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    const plain = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(plain, [], 'every stderr line is a JSON log line');
    assert.doesNotMatch(stderr, overlapWarning);
    const warning = lines
      .map((l) => JSON.parse(l) as { msg?: string; warning?: { name?: string; message?: string } })
      .find((l) => l.warning?.message === 'a test warning');
    assert.ok(warning, 'the warning is a structured log line');
    assert.equal(warning.warning?.name, 'TestWarning');
    assert.ok(
      lines.some((l) => /SIGTERM received: not ready, then draining sessions/.test(l)),
      'the drain is logged',
    );
  });
});
