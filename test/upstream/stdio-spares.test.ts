import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { StdioSpares } from '../../src/upstream/stdio-spares.js';
import { closeClient } from '../helpers/client.js';
import { fixturePath, isAlive } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Warm spares of a stdio connection (src/upstream/stdio-spares.ts): a new session takes a process spawned before it
 * opened, with the very environment a session's own process gets; no two sessions share one; a spare that dies is
 * replaced; the gateway's shutdown ends them.
 */

interface Whoami {
  pid: number;
  startedAt: number;
  initializedAt: number;
  env: Record<string, string>;
}

const secret = 'spare-test-injected-credential-5b1c0e';
const passed = 'spare-test-passed-through-9f27aa';
const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');

async function session(gw: TestGateway, connection: string): Promise<{ whoami: Whoami; close: () => Promise<void> }> {
  const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: gw.auth } });
  const client = new Client({ name: 'spares-test', version: '1.0.0' });
  await client.connect(transport);
  const result = (await client.callTool({ name: 'whoami', arguments: {} })) as { content: Array<{ text: string }> };
  return { whoami: JSON.parse(result.content[0]!.text) as Whoami, close: () => closeClient(client, transport) };
}

describe('stdio warm spares', () => {
  let gw: TestGateway;
  const pool = () => gw.gateway.spares.for('pids')!;

  // protocol: 2025-11-25, so that no server/discover probe runs: with auto, the probe's process serves the first session
  // (src/upstream/modern-stdio.ts), and the pool fills on the second.
  before(async () => {
    process.env.SPARE_TEST_PASSED = passed;
    process.env.PORTCULLIS_SPARES_TEST_SECRET = secret;
    gw = await startTestGateway({
      connections: {
        pids: {
          stdio: {
            command: process.execPath,
            args: [fixturePath('pid-server.js')],
            protocol: '2025-11-25',
            env: { SPARE_TEST_INJECTED: '${env:PORTCULLIS_SPARES_TEST_SECRET}' },
            passEnv: ['SPARE_TEST_PASSED'],
            spares: 2,
          },
        },
        cold: { stdio: { command: process.execPath, args: [fixturePath('pid-server.js')], protocol: '2025-11-25', spares: 0 } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    delete process.env.SPARE_TEST_PASSED;
    delete process.env.PORTCULLIS_SPARES_TEST_SECRET;
  });

  it('a connection holds no spare before its first session; then a session gets a process spawned before it opened', async () => {
    assert.deepEqual(pool().waiting, [], 'no process for a connection nobody has used');
    const first = await session(gw, 'pids');
    await waitFor(() => pool().waiting.length === 2, 'the pool to fill after the first session');
    const spares = pool().waiting;
    const opening = Date.now();
    const second = await session(gw, 'pids');
    assert.ok(spares.includes(second.whoami.pid), `the session's process ${second.whoami.pid} is one of the spares ${spares.join(', ')}`);
    // (Its own clock reading at start proves nothing here: a spare counts as waiting once spawned, maybe before its script runs.)
    assert.ok(second.whoami.initializedAt >= opening, 'and was initialized by this session, not before');
    assert.ok(!pool().waiting.includes(second.whoami.pid), 'a taken spare leaves the pool');
    // The environment a session's own process gets, exactly: the injected credential and the passed-through variable.
    assert.deepEqual(second.whoami.env, first.whoami.env);
    assert.deepEqual(second.whoami.env, { SPARE_TEST_INJECTED: sha256(secret), SPARE_TEST_PASSED: sha256(passed) });
    await first.close();
    await second.close();
  });

  it('two sessions never get the same process, also when they open together and drain the pool', async () => {
    await waitFor(() => pool().waiting.length === 2, 'the pool to be full');
    const sessions = await Promise.all(Array.from({ length: 6 }, () => session(gw, 'pids')));
    const pids = sessions.map((s) => s.whoami.pid);
    assert.equal(new Set(pids).size, pids.length, `distinct processes: ${pids.join(', ')}`);
    await waitFor(() => pool().waiting.length === 2, 'the pool to refill');
    for (const pid of pool().waiting) assert.ok(!pids.includes(pid), 'no waiting spare is a process a session has');
    await Promise.all(sessions.map((s) => s.close()));
    for (const pid of pids) await waitFor(() => !isAlive(pid), `the closed session's process ${pid} to end`);
    assert.equal(pool().waiting.length, 2, 'closing sessions does not give their processes back to the pool');
  });

  it('a spare that exits while it waits is replaced by a new process', async () => {
    await waitFor(() => pool().waiting.length === 2, 'the pool to be full');
    const [victim] = pool().waiting;
    const diedBefore = pool().died;
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => pool().died === diedBefore + 1, 'the pool to see the spare die');
    await waitFor(() => pool().waiting.length === 2 && !pool().waiting.includes(victim!), 'a replacement spare');
    const { whoami, close } = await session(gw, 'pids');
    assert.notEqual(whoami.pid, victim, 'no session gets the dead spare');
    await close();
  });

  it('spares: 0 keeps no spare, and sessions spawn their own', async () => {
    assert.equal(gw.gateway.spares.for('cold'), undefined);
    const opening = Date.now();
    const { whoami, close } = await session(gw, 'cold');
    assert.ok(whoami.startedAt >= opening - 5, 'the process started for this session');
    await close();
  });

  it('the gateway ends its spares when it stops', async () => {
    const other = await startTestGateway({
      connections: { pids: { stdio: { command: process.execPath, args: [fixturePath('pid-server.js')], protocol: '2025-11-25', spares: 1 } } },
    });
    try {
      const { close } = await session(other, 'pids');
      await close();
      await waitFor(() => other.gateway.spares.for('pids')!.waiting.length === 1, 'a spare');
    } finally {
      const [spare] = other.gateway.spares.for('pids')!.waiting;
      await other.stop();
      assert.ok(spare !== undefined && !isAlive(spare), 'the spare has ended with the gateway');
    }
  });

  it('the config refuses a spare count that is not a whole number from 0 to 16', () => {
    for (const spares of [-1, 1.5, 17]) {
      assert.throws(
        () => parseConfig(`connections:\n  x:\n    stdio:\n      command: node\n      spares: ${spares}\n    access:\n      groups: ['*']\n`, 'test'),
        /spares/,
        `spares: ${spares}`,
      );
    }
  });

  it('a server that dies at once: five tries with backoff, then no more spawns until a session comes', async () => {
    const config = parseConfig(
      `connections:\n  x:\n    stdio:\n      command: sh\n      args: ['-c', 'exit 3']\n    access:\n      groups: ['*']\n`,
      'test',
    ).connections.get('x')!.upstream;
    assert.equal(config.kind, 'stdio');
    if (config.kind !== 'stdio') return;
    const pool = new StdioSpares(config, 1, pino({ level: 'silent' }), 5);
    try {
      assert.equal(pool.take(), undefined, 'nothing waits yet');
      await waitFor(() => pool.paused, 'the pool to give up');
      assert.equal(pool.died, 5);
      assert.equal(pool.spawned, 5);
      // Paused: no timer and nothing in flight. Ten times the longest backoff it used later, still nothing new.
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(pool.spawned, 5, 'no spawn while paused');
      assert.equal(pool.take(), undefined);
      assert.equal(pool.paused, false, 'a session resumes the pool');
      await waitFor(() => pool.spawned === 6, 'the pool to try again');
    } finally {
      await pool.close();
    }
  });
});
