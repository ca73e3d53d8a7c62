import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { everythingStdio, isAlive } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postInitialize, rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The stdio server's process: started only from the configured command, ended with its whole process group
 * when the session ends (a wrapper's children included), and a command that does not exist is a clear error.
 */

describe('stdio upstream process', () => {
  let gw: TestGateway;
  let dir: string;
  const pidFile = () => join(dir, 'grandchild.pid');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-stdio-'));
    const { command, args } = everythingStdio();
    // A wrapper that leaves a long-lived grandchild behind, as `npx` and shell scripts can.
    const wrapper = `sleep 1000 & echo $! > ${JSON.stringify(pidFile())}; exec ${JSON.stringify(command)} ${args.map((a) => JSON.stringify(a)).join(' ')}`;
    gw = await startTestGateway({
      connections: {
        // No warm spare: a spare's wrapper would write its own grandchild's pid to the same file.
        wrapped: { stdio: { command: 'sh', args: ['-c', wrapper], spares: 0 } },
        missing: { stdio: { command: 'no-such-program-portcullis' } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends the whole process group when the session ends: no orphans', async () => {
    const sessionId = await rawInitialize(gw.mcp('wrapped'), gw.auth);
    await waitFor(() => {
      try {
        return readFileSync(pidFile(), 'utf8').trim().length > 0;
      } catch {
        return false;
      }
    }, 'the wrapper to start its grandchild');
    const grandchild = Number(readFileSync(pidFile(), 'utf8').trim());
    assert.ok(isAlive(grandchild), 'the grandchild runs while the session does');
    const res = await fetch(gw.mcp('wrapped'), { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': sessionId } });
    assert.equal(res.status, 200);
    await waitFor(() => !isAlive(grandchild), 'the grandchild to be ended with its group');
  });

  it('a command that does not exist: 502 naming the command and the key', async () => {
    const res = await postInitialize(gw.mcp('missing'), gw.auth);
    assert.equal(res.status, 502);
    const body = (await res.json()) as { id: number; error: { message: string } };
    assert.equal(body.id, 1);
    assert.match(body.error.message, /"no-such-program-portcullis" was not found \(stdio\.command\)/);
    assert.equal(gw.gateway.sessions.size, 0);
  });
});
