import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { DevIdentity } from '../../src/identity/dev-identity.js';
import { everythingStdio } from '../helpers/everything.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { freePort } from '../helpers/ports.js';

/**
 * An MRTR round's requestState names the process that opened the round, not only its instance id: after a restart
 * under the same id (same data directory, same token key), the first round of the new process is not the one a
 * requestState of the old process's first round names.
 */

describe('MRTR rounds across a restart of the same instance id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-mrtr-restart-'));
  const config = join(dir, 'gateway.yaml');
  const dev = { users: { tester: ['testers'] } };
  let url: URL;
  let authorization: string;
  const running: GatewayProcess[] = [];

  before(async () => {
    const port = await freePort();
    writeFileSync(
      config,
      stringify({
        listen: `127.0.0.1:${port}`,
        dataDir: dir,
        log: { level: 'warn' },
        identity: { dev },
        connections: { everything: { stdio: { ...everythingStdio(), spares: 0 }, tools: { pin: false }, access: { groups: ['testers'] } } },
      }),
    );
    url = new URL(`http://127.0.0.1:${port}/mcp/everything`);
    const { token } = await (await DevIdentity.load(dir, { ...dev, allowNonLoopback: false, tokenLifetimeMs: 3_600_000 })).mint('tester');
    authorization = `Bearer ${token}`;
  });

  after(async () => {
    for (const p of running) await p.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const p = new GatewayProcess(config);
    running.push(p);
    await p.ready();
    return p;
  };

  const params = {
    name: 'trigger-elicitation-request',
    arguments: {},
    _meta: { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } },
  };
  const headers = (): Array<[string, string]> => [...modernHeaders('tools/call', 'trigger-elicitation-request'), ['authorization', authorization]];

  /** The process's first round: the same request, hence the same principal, connection, digest and round number. */
  const openFirstRound = async () => {
    const listed = await rawRequest(
      url,
      'POST',
      [...modernHeaders('tools/list'), ['authorization', authorization]],
      JSON.stringify(modernBody('tools/list', {}, 0)),
    );
    assert.equal(listed.status, 200, listed.body);
    const first = await rawRequest(url, 'POST', headers(), JSON.stringify(modernBody('tools/call', params, 1)));
    const round = first.json?.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
    assert.equal(round?.resultType, 'input_required', first.body);
    const inputResponses = Object.fromEntries(Object.keys(round.inputRequests).map((k) => [k, { action: 'decline' }]));
    return {
      requestState: round.requestState,
      retry: (requestState: string) => JSON.stringify(modernBody('tools/call', { ...params, inputResponses, requestState }, 2)),
    };
  };

  it('refuses the requestState of the previous process, and answers the new one', { timeout: 60_000 }, async () => {
    const earlier = await start();
    const old = await openFirstRound();
    await earlier.stop('SIGKILL');

    await start();
    const now = await openFirstRound();
    assert.notEqual(now.requestState, old.requestState);
    const stale = await rawRequest(url, 'POST', headers(), now.retry(old.requestState));
    assert.equal(stale.status, 400, stale.body);
    assert.match(stale.json?.error?.message ?? '', /already been answered or has expired/);
    // The new round was open all along, and is still its own requestState's.
    const answered = await rawRequest(url, 'POST', headers(), now.retry(now.requestState));
    assert.equal(answered.status, 200, answered.body);
    assert.notEqual(answered.json?.result?.resultType, 'input_required', answered.body);
  });
});
