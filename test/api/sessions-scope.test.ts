import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { LiveEvents } from '../../src/console/live-events.js';
import type { Session } from '../../src/session/session.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startTestIdp, type TestIdp } from '../helpers/idp.js';
import { rawInitialize } from '../helpers/raw-http.js';

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
      identity: { issuers: [idpA, idpB].map((idp) => ({ issuer: idp.issuer, audiences: ['portcullis'] })) },
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
    const list = async (headers: Record<string, string>) => ((await (await fetch(new URL('/api/sessions', gw.url), { headers })).json()) as { sessions: Array<{ id: string; issuer: string }> }).sessions;

    const own = await list(adaAtA);
    assert.deepEqual(own.map((s) => [s.id, s.issuer]), [[id, idpA.issuer]]);
    assert.deepEqual(await list(adaAtB), []);
    assert.equal((await fetch(new URL(`/api/sessions/${id}`, gw.url), { headers: adaAtB })).status, 404);
    assert.equal((await fetch(new URL(`/api/sessions/${id}/export`, gw.url), { headers: adaAtB })).status, 404);
    assert.equal((await fetch(new URL('/api/sessions?user=ada', gw.url), { headers: adaAtB })).status, 200, 'their own subject, so allowed…');
    assert.deepEqual(await list(adaAtB), [], '…and still only their own');
    const exported = await (await fetch(new URL(`/api/sessions/${id}/export`, gw.url), { headers: adaAtA })).text();
    assert.equal((JSON.parse(exported.split('\n')[0]!) as { session: { identity: { issuer: string } } }).session.identity.issuer, idpA.issuer, 'the export names the issuer');
  });
});

describe('the live stream', () => {
  /** A listener's stream, as text. */
  function listener(): { req: IncomingMessage; res: ServerResponse; text: () => string } {
    const req = new PassThrough() as unknown as IncomingMessage;
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const res = Object.assign(out, { writeHead: () => res }) as unknown as ServerResponse;
    return { req, res, text: () => text };
  }

  it('tells of a session only its owner (subject and issuer) and the auditors', () => {
    const live = new LiveEvents();
    try {
      const forever = { idHash: 'h', expiresAtUs: Number.MAX_SAFE_INTEGER };
      const owner = listener();
      const namesake = listener();
      const auditor = listener();
      live.subscribe(owner.req, owner.res, { subject: 'ada', issuer: 'https://a.example', groups: [] }, false, forever);
      live.subscribe(namesake.req, namesake.res, { subject: 'ada', issuer: 'https://b.example', groups: [] }, false, forever);
      live.subscribe(auditor.req, auditor.res, { subject: 'eve', issuer: 'https://b.example', groups: [] }, true, forever);
      const session = { id: 'sess-1', connection: 'c', identity: { subject: 'ada', issuer: 'https://a.example', groups: [] } } as unknown as Session;
      live.opened(session);
      live.closed(session, 'done');
      assert.match(owner.text(), /"session-opened".*"sess-1"[\s\S]*"session-closed"/);
      assert.match(auditor.text(), /"session-opened".*"sess-1"[\s\S]*"session-closed"/);
      assert.doesNotMatch(namesake.text(), /sess-1/);
      live.reviewsChanged();
      assert.match(namesake.text(), /"reviews"/, 'a nudge goes to everyone: the API decides what each sees');
    } finally {
      live.close();
    }
  });
});
