import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { consoleSignInAtIdp, readLiveEvents } from '../helpers/console.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * "One's own sessions" is one person: a subject at its issuer. Two identity providers that both know a user `ada`
 * know two people, and neither sees the other's recordings, in the API or in the console's live stream.
 */

describe('sessions are scoped by subject and issuer', () => {
  let idpA: TestIdp;
  let idpB: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idpA = await startTestIdp();
    idpB = await startTestIdp();
    gw = await startTestGateway({
      identity: { issuers: [idpA, idpB].map((idp) => ({ issuer: idp.issuer, audiences: ['portcullis'], clientId: 'portcullis-cli' })) },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['*'] } } },
    });
  });
  after(async () => {
    await gw?.stop();
    await idpA?.stop();
    await idpB?.stop();
  });

  it('the same subject at another issuer sees none of the first one’s sessions', async () => {
    const adaAtA = { authorization: `Bearer ${await idpA.sign({ sub: 'ada' })}` };
    const adaAtB = { authorization: `Bearer ${await idpB.sign({ sub: 'ada' })}` };
    const id = await rawInitialize(gw.mcp('everything'), adaAtA);
    await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...adaAtA, 'mcp-session-id': id } });
    const list = async (headers: Record<string, string>) =>
      ((await (await fetch(new URL('/api/sessions', gw.url), { headers })).json()) as { sessions: Array<{ id: string; issuer: string }> }).sessions;

    const own = await list(adaAtA);
    assert.deepEqual(
      own.map((s) => [s.id, s.issuer]),
      [[id, idpA.issuer]],
    );
    assert.deepEqual(await list(adaAtB), []);
    assert.equal((await fetch(new URL(`/api/sessions/${id}`, gw.url), { headers: adaAtB })).status, 404);
    assert.equal((await fetch(new URL(`/api/sessions/${id}/export`, gw.url), { headers: adaAtB })).status, 404);
    assert.equal((await fetch(new URL('/api/sessions?user=ada', gw.url), { headers: adaAtB })).status, 200, 'their own subject, so allowed…');
    assert.deepEqual(await list(adaAtB), [], '…and still only their own');
    const exported = await (await fetch(new URL(`/api/sessions/${id}/export`, gw.url), { headers: adaAtA })).text();
    assert.equal(
      (JSON.parse(exported.split('\n')[0]!) as { session: { identity: { issuer: string } } }).session.identity.issuer,
      idpA.issuer,
      'the export names the issuer',
    );
  });

  it('and the console’s live stream tells only the owner (subject and issuer) of a session', async () => {
    const abort = new AbortController();
    try {
      const atA = await readLiveEvents(gw, await consoleSignInAtIdp(gw, idpA, 'ada'), abort.signal);
      const atB = await readLiveEvents(gw, await consoleSignInAtIdp(gw, idpB, 'ada'), abort.signal);
      const adaAtA = { authorization: `Bearer ${await idpA.sign({ sub: 'ada' })}` };
      const id = await rawInitialize(gw.mcp('everything'), adaAtA);
      await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...adaAtA, 'mcp-session-id': id } });
      await waitFor(() => atA.some((e) => e.type === 'session-closed' && e.id === id), 'the owner hears the session end');
      // The events of its exchanges reach the owner too, as they are recorded.
      await waitFor(() => atA.some((e) => e.type === 'session-events' && e.id === id), 'the owner hears its exchanges');
      assert.deepEqual(
        atA.filter((e) => e.type !== 'session-events').map((e) => e.type),
        ['session-opened', 'session-closed'],
      );
      assert.deepEqual(atB, [], 'ada at the other IdP hears nothing of it');
    } finally {
      abort.abort();
    }
  });
});
