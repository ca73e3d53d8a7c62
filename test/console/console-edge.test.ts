import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { consoleCsp } from '../../src/console/static-files.js';
import { consoleSignIn, type ConsoleCaller, readLiveEvents } from '../helpers/console.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { alteredSecret } from '../helpers/negative.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The console's server side over plain HTTP: its pages and their headers, the dev sign-in and its key, the cookie,
 * CSRF and Origin checks on every change, who sees which sessions (the API refuses, not just the page), the admins'
 * connection list, and the live event stream.
 */

process.env.PORTCULLIS_TEST_CONSOLE_SECRET = 'planted-console-secret-0042';

const users = { olga: ['eng'], omar: ['eng'], audrey: ['auditors'], adam: ['admins'] };

/** One recorded session of `user` on `everything`: initialize, an echo (of `message`), and the end. */
async function recordSession(gw: TestGateway, user: string, message = `from ${user}`): Promise<string> {
  const auth = { authorization: `Bearer ${await gw.tokenFor(user)}` };
  const id = await rawInitialize(gw.mcp('everything'), auth);
  const headers = { ...mcpHeaders, ...auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
  await (
    await fetch(gw.mcp('everything'), {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
    })
  ).text();
  await fetch(gw.mcp('everything'), { method: 'DELETE', headers: { ...auth, 'mcp-session-id': id } });
  return id;
}

describe('the console over HTTP', () => {
  let gw: TestGateway;
  const sessions: Record<string, string> = {};

  before(async () => {
    gw = await startTestGateway({
      identity: { dev: { users } },
      roles: { auditors: ['auditors'], admins: ['admins'] },
      connections: {
        everything: {
          description: 'the reference server',
          stdio: { ...everythingStdio(), env: { PLANTED: '${env:PORTCULLIS_TEST_CONSOLE_SECRET}' } },
          access: { groups: ['eng'] },
        },
      },
    });
    sessions.olga = await recordSession(gw, 'olga');
    sessions.omar = await recordSession(gw, 'omar');
  });
  after(() => gw?.stop());

  describe('pages', () => {
    it('answers every console route with index.html under a strict Content-Security-Policy', async () => {
      for (const path of ['/', '/sign-in', '/sessions/abc', '/reviews', '/reviews/rv_1', '/admin']) {
        const res = await fetch(new URL(path, gw.url));
        assert.equal(res.status, 200, path);
        assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.equal(res.headers.get('content-security-policy'), consoleCsp);
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(res.headers.get('cache-control'), 'no-cache');
        const html = await res.text();
        assert.match(html, /<div id="app"><\/div>/);
        assert.doesNotMatch(html, /<script>|<style>|style="/, 'nothing inline: the CSP allows only files from the gateway');
      }
      assert.doesNotMatch(consoleCsp, /unsafe-inline|unsafe-eval|\*/);
      assert.match(consoleCsp, /frame-ancestors 'none'/);
    });

    it('serves the bundled assets for good, and only GET them', async () => {
      const html = await (await fetch(new URL('/', gw.url))).text();
      const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, `index.html names its bundle: ${html}`);
      const res = await fetch(new URL(script, gw.url));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.ok((await res.text()).length > 1000);
      assert.equal((await fetch(new URL('/', gw.url), { method: 'POST' })).status, 405);
      assert.equal((await fetch(new URL('/assets/nothing-here.js', gw.url))).status, 404, 'not a console file: the gateway 404s');
      assert.equal((await fetch(new URL('/pins', gw.url))).status, 404, 'not a console page either');
    });

    it('refuses a foreign Host, as the MCP endpoints do (DNS rebinding)', async () => {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(new URL('/', gw.url), { headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 403);
    });
  });

  describe('signing in', () => {
    it('names the ways to sign in: no issuers here, the dev users', async () => {
      const body = (await (await fetch(new URL('/api/console/sign-in', gw.url))).json()) as { issuers: unknown[]; devUsers: string[] };
      assert.deepEqual(body, { issuers: [], devUsers: Object.keys(users) });
    });

    it('a dev sign-in needs the key of the printed link, the console page as Origin, and a known user', async () => {
      const key = gw.gateway.devIdentity!.consoleKey;
      const devSignIn = (body: unknown, origin: string | null = gw.url) =>
        fetch(new URL('/auth/dev', gw.url), {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) },
          body: JSON.stringify(body),
        });
      const noKey = await devSignIn({ user: 'olga' });
      assert.equal(noKey.status, 403);
      assert.match(((await noKey.json()) as { error: string }).error, /needs its key: open the console link the gateway printed/);
      assert.equal((await devSignIn({ user: 'olga', key: alteredSecret(key) })).status, 403, 'a wrong key');
      assert.equal((await devSignIn({ user: 'olga', key }, null)).status, 403, 'no Origin: not from the page');
      assert.equal((await devSignIn({ user: 'olga', key }, 'http://evil.example')).status, 403, 'a foreign Origin');
      assert.equal(
        (await devSignIn({ user: 'olga', key }, `http://localhost:${Number(new URL(gw.url).port) + 1}`)).status,
        403,
        'an allowed host on another port',
      );
      const unknown = await devSignIn({ user: 'mallory', key });
      assert.equal(unknown.status, 400);
      assert.match(((await unknown.json()) as { error: string }).error, /not a dev user; the config lists: olga, omar, audrey, adam/);
      assert.equal((await fetch(new URL('/auth/dev', gw.url))).status, 405);
      const post = (body: string) =>
        fetch(new URL('/auth/dev', gw.url), { method: 'POST', headers: { origin: gw.url, 'content-type': 'application/json' }, body });
      const notJson = await post('{"user": "olga", ');
      assert.equal(notJson.status, 400);
      assert.match(((await notJson.json()) as { error: string }).error, /not JSON/);
      assert.equal((await post('["olga"]')).status, 400, 'not an object');
      assert.equal((await post(JSON.stringify({ user: 'olga', key, pad: 'x'.repeat(70_000) }))).status, 413, 'over 64 KiB');
      assert.ok(gw.gateway.consoleUrl?.endsWith(`/sign-in#dev=${key}`), 'the banner prints the link with the key in its fragment');
    });

    it('sets an HttpOnly SameSite cookie whose value the store never keeps, and says who is signed in', async () => {
      const olga = await consoleSignIn(gw, 'olga');
      assert.match(olga.setCookie, /^portcullis-console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=28800$/);
      const me = (await (await olga.get('/api/console/me')).json()) as {
        identity: { subject: string; groups: string[] };
        roles: Record<string, boolean>;
        csrfToken: string;
        expiresAt: string;
      };
      assert.equal(me.identity.subject, 'olga');
      assert.deepEqual(me.identity.groups, ['eng']);
      assert.deepEqual(me.roles, { auditor: false, admin: false });
      assert.ok(me.csrfToken.length >= 43);
      assert.ok(Date.parse(me.expiresAt) > Date.now() + 7 * 3_600_000);
      assert.ok(!gw.log.text.includes(olga.cookie.split('=')[1]!), 'the cookie is never logged');
      assert.equal((await fetch(new URL('/api/console/me', gw.url))).status, 401);
      assert.equal(
        (await fetch(new URL('/api/console/me', gw.url), { headers: { cookie: 'portcullis-console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })).status,
        401,
        'an unknown cookie',
      );
    });

    it('signing out ends the session: the cookie is cleared and no longer works', async () => {
      const omar = await consoleSignIn(gw, 'omar');
      assert.equal((await omar.get('/api/console/me')).status, 200);
      const out = await omar.post('/auth/sign-out');
      assert.equal(out.status, 204);
      assert.match(out.headers.get('set-cookie') ?? '', /^portcullis-console=; .*Max-Age=0/);
      assert.equal((await omar.get('/api/console/me')).status, 401);
      assert.equal((await omar.get('/api/sessions')).status, 401, 'the API refuses the ended session too');
      const again = await omar.post('/auth/sign-out');
      assert.equal(again.status, 204, 'signing out of an ended session still clears the cookie');
      assert.match(again.headers.get('set-cookie') ?? '', /^portcullis-console=; .*Max-Age=0/);
    });
  });

  describe('changes from the console', () => {
    let adam: ConsoleCaller;
    before(async () => {
      adam = await consoleSignIn(gw, 'adam');
    });

    it('are refused without the CSRF token, with a wrong one, or from another origin', async () => {
      const path = '/api/reviews/rv_nothing/approve';
      const noToken = await adam.post(path, {}, { 'x-portcullis-csrf': '' });
      assert.equal(noToken.status, 403);
      assert.match(((await noToken.json()) as { error: string }).error, /must come from its own page \(Origin and the CSRF token\)/);
      assert.equal((await adam.post(path, {}, { 'x-portcullis-csrf': alteredSecret(adam.csrf) })).status, 403);
      assert.equal((await adam.post(path, {}, { origin: 'http://evil.example' })).status, 403, 'a foreign host (refused before the console sees it)');
      // An allowed host on another port is another site: refused by the Origin check.
      const otherPort = await adam.post(path, {}, { origin: `http://127.0.0.1:${Number(new URL(gw.url).port) + 1}` });
      assert.equal(otherPort.status, 403);
      assert.match(((await otherPort.json()) as { error: string }).error, /Origin .* is not allowed \(http\.allowedOrigins\)/);
      const noOrigin = await fetch(new URL(path, gw.url), {
        method: 'POST',
        headers: { cookie: adam.cookie, 'content-type': 'application/json', 'x-portcullis-csrf': adam.csrf },
        body: '{}',
      });
      assert.equal(noOrigin.status, 403, 'no Origin at all');
      // With both, the request reaches the reviews API, which knows no such review.
      assert.equal((await adam.post(path)).status, 404);
    });
  });

  describe('who sees which sessions', () => {
    it('an operator sees only their own sessions, in the list and one by one', async () => {
      const olga = await consoleSignIn(gw, 'olga');
      const list = (await (await olga.get('/api/sessions')).json()) as { sessions: Array<{ id: string; subject: string }> };
      assert.deepEqual(
        list.sessions.map((s) => s.id),
        [sessions.olga],
      );
      const others = await olga.get('/api/sessions?user=omar');
      assert.equal(others.status, 403);
      assert.match(((await others.json()) as { error: string }).error, /your own sessions only \(roles.auditors see everyone's\)/);
      for (const what of ['', '/events', '/verify', '/export']) {
        assert.equal((await olga.get(`/api/sessions/${sessions.omar}${what}`)).status, 404, `someone else's session${what}: as if it did not exist`);
        assert.equal((await olga.get(`/api/sessions/${sessions.olga}${what}`)).status, 200, `their own${what}`);
      }
    });

    it('the same holds for their bearer token', async () => {
      const token = await gw.tokenFor('olga');
      const list = (await (await fetch(new URL('/api/sessions', gw.url), { headers: { authorization: `Bearer ${token}` } })).json()) as {
        sessions: Array<{ id: string }>;
      };
      assert.deepEqual(
        list.sessions.map((s) => s.id),
        [sessions.olga],
      );
      assert.equal((await fetch(new URL(`/api/sessions/${sessions.omar}/events`, gw.url), { headers: { authorization: `Bearer ${token}` } })).status, 404);
    });

    it('an auditor sees everyone’s, and may filter by user, text and flags', async () => {
      const audrey = await consoleSignIn(gw, 'audrey');
      const all = (await (await audrey.get('/api/sessions')).json()) as { sessions: Array<{ id: string }> };
      assert.deepEqual(all.sessions.map((s) => s.id).sort(), [sessions.olga, sessions.omar].sort());
      const omar = (await (await audrey.get('/api/sessions?user=omar')).json()) as { sessions: Array<{ id: string }> };
      assert.deepEqual(
        omar.sessions.map((s) => s.id),
        [sessions.omar],
      );
      const search = (await (await audrey.get(`/api/sessions?q=${encodeURIComponent('OLG')}`)).json()) as { sessions: Array<{ id: string }> };
      assert.deepEqual(
        search.sessions.map((s) => s.id),
        [sessions.olga],
        'search is case-insensitive over user, e-mail, connection and id',
      );
      const literal = (await (await audrey.get(`/api/sessions?q=${encodeURIComponent('o_ga')}`)).json()) as { sessions: unknown[] };
      assert.equal(literal.sessions.length, 0, '_ is a literal, not a wildcard');
      const denied = (await (await audrey.get('/api/sessions?denied=true')).json()) as { sessions: unknown[] };
      assert.equal(denied.sessions.length, 0);
      const clean = (await (await audrey.get('/api/sessions?redacted=false')).json()) as { sessions: unknown[] };
      assert.equal(clean.sessions.length, 2);
      assert.equal((await audrey.get('/api/sessions?denied=yes')).status, 400);
      assert.equal((await audrey.get(`/api/sessions/${sessions.omar}/verify`)).status, 200);
    });
  });

  describe('connections', () => {
    it('are listed for admins, naming the upstream without its arguments or environment', async () => {
      const adam = await consoleSignIn(gw, 'adam');
      const res = await adam.get('/api/console/connections');
      assert.equal(res.status, 200);
      const text = await res.text();
      const { connections } = JSON.parse(text) as { connections: Array<Record<string, unknown>> };
      assert.deepEqual(connections, [
        {
          name: 'everything',
          description: 'the reference server',
          upstream: `stdio: ${everythingStdio().command.split('/').at(-1)}`,
          agent: null,
          groups: ['eng'],
          approvers: [],
          guardrailsDefault: 'allow',
          pinning: true,
          openSessions: 0,
          members: null,
        },
      ]);
      assert.ok(!text.includes(everythingStdio().args[0]!), 'never the arguments');
      assert.ok(!text.includes('PLANTED'), 'never the environment');
    });

    it('and the agents are the admins’ too, in the console and by bearer token', async () => {
      const adam = await consoleSignIn(gw, 'adam');
      assert.deepEqual(await (await adam.get('/api/agents')).json(), { agents: [] }, 'no connection is served by an agent here');
      const olga = await consoleSignIn(gw, 'olga');
      const refused = await olga.get('/api/agents');
      assert.equal(refused.status, 403);
      assert.match(((await refused.json()) as { error: string }).error, /only members of admins see the agents/);
      assert.equal((await fetch(new URL('/api/agents', gw.url), { headers: { authorization: `Bearer ${await gw.tokenFor('olga')}` } })).status, 403);
    });

    it('are refused to everyone else', async () => {
      const olga = await consoleSignIn(gw, 'olga');
      const res = await olga.get('/api/console/connections');
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as { error: string }).error, /only members of admins see the connections/);
      assert.equal((await fetch(new URL('/api/console/connections', gw.url))).status, 401);
    });
  });

  describe('live events', () => {
    it('tells each person of the sessions they may see opening and closing, as they happen', async () => {
      const abort = new AbortController();
      try {
        const olgaEvents = await readLiveEvents(gw, (await consoleSignIn(gw, 'olga')).cookie, abort.signal);
        const audreyEvents = await readLiveEvents(gw, (await consoleSignIn(gw, 'audrey')).cookie, abort.signal);
        const omars = await recordSession(gw, 'omar');
        const olgas = await recordSession(gw, 'olga');
        await waitFor(() => audreyEvents.filter((e) => e.type === 'session-closed').length === 2, 'the auditor hears both sessions end');
        await waitFor(() => olgaEvents.some((e) => e.type === 'session-closed'), 'olga hears her own session end');
        // Sessions opening and closing; the events of their exchanges come as they are recorded (below).
        const comings = (events: typeof audreyEvents) => events.filter((e) => e.type !== 'session-events');
        assert.deepEqual(
          comings(audreyEvents).map((e) => [e.type, (e.session as { id?: string } | undefined)?.id ?? e.id]),
          [
            ['session-opened', omars],
            ['session-closed', omars],
            ['session-opened', olgas],
            ['session-closed', olgas],
          ],
        );
        assert.deepEqual(
          comings(olgaEvents).map((e) => [e.type, (e.session as { id?: string } | undefined)?.id ?? e.id]),
          [
            ['session-opened', olgas],
            ['session-closed', olgas],
          ],
          'never someone else’s',
        );
        // The exchanges of both sessions reach the auditor, and only olga's reach olga.
        await waitFor(
          () => [omars, olgas].every((id) => audreyEvents.some((e) => e.type === 'session-events' && e.id === id)),
          "the auditor hears both sessions' exchanges",
        );
        await waitFor(() => olgaEvents.some((e) => e.type === 'session-events' && e.id === olgas), "olga hears her own session's exchanges");
        assert.deepEqual([...new Set(olgaEvents.filter((e) => e.type === 'session-events').map((e) => e.id))], [olgas], 'never someone else’s exchanges');
      } finally {
        abort.abort();
      }
    });

    it('leave a long payload out of an event line, which the page reads from the API', async () => {
      const abort = new AbortController();
      try {
        const events = await readLiveEvents(gw, (await consoleSignIn(gw, 'olga')).cookie, abort.signal);
        const id = await recordSession(gw, 'olga', 'x'.repeat(20_000));
        type Line = { seq: number; payload?: string; cut?: true; rpc?: { kind: string; method?: string } };
        const lines = () => events.filter((e) => e.type === 'session-events' && e.id === id).flatMap((e) => e.events as Line[]);
        await waitFor(() => lines().some((l) => l.rpc?.method === 'tools/call'), 'the call in the stream');
        const call = lines().find((l) => l.rpc?.method === 'tools/call')!;
        assert.equal(call.cut, true);
        assert.equal(call.payload, undefined);
        const initialize = lines().find((l) => l.rpc?.method === 'initialize')!;
        assert.equal(initialize.cut, undefined);
        assert.match(initialize.payload!, /"initialize"/);
        const recorded = (await (await fetch(new URL(`/api/sessions/${id}/events`, gw.url), { headers: gw.apiAuth })).json()) as { events: Line[] };
        assert.equal(recorded.events.find((l) => l.seq === call.seq)!.payload!.length > 20_000, true, 'the API has it whole');
      } finally {
        abort.abort();
      }
    });

    it('end with the console session: signing out closes the stream', async () => {
      const omar = await consoleSignIn(gw, 'omar');
      const res = await fetch(new URL('/api/console/live', gw.url), { headers: { cookie: omar.cookie } });
      const reader = res.body!.getReader();
      assert.match(Buffer.from((await reader.read()).value!).toString(), /^: live/);
      assert.equal((await omar.post('/auth/sign-out')).status, 204);
      const ended = await Promise.race([
        (async () => {
          for (;;) if ((await reader.read()).done) return true;
        })(),
        new Promise<false>((r) => setTimeout(() => r(false), 5000)),
      ]);
      assert.equal(ended, true, 'the stream ended');
    });

    it('are for signed-in people only', async () => {
      assert.equal((await fetch(new URL('/api/console/live', gw.url))).status, 401);
    });
  });
});

describe('the console switched off', () => {
  it('serves no pages and no sign-in, and the API still answers bearer tokens', async () => {
    const gw = await startTestGateway({ console: { enabled: false }, connections: { everything: { stdio: everythingStdio() } } });
    try {
      assert.equal((await fetch(new URL('/', gw.url))).status, 404);
      assert.equal((await fetch(new URL('/auth/dev', gw.url), { method: 'POST' })).status, 404);
      assert.equal((await fetch(new URL('/api/sessions', gw.url), { headers: gw.auth })).status, 200);
      assert.equal(gw.gateway.consoleUrl, undefined);
    } finally {
      await gw.stop();
    }
  });
});

describe('the console over https', () => {
  it('sets a __Host- cookie, Secure, and ignores a plain one', async () => {
    const publicUrl = 'https://portcullis.example.test';
    const gw = await startTestGateway({
      http: { publicUrl, allowedHosts: ['127.0.0.1', 'portcullis.example.test'] },
      connections: { everything: { stdio: everythingStdio() } },
    });
    try {
      const signIn = await fetch(new URL('/auth/dev', gw.url), {
        method: 'POST',
        headers: { origin: publicUrl, 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'tester', key: gw.gateway.devIdentity!.consoleKey }),
      });
      assert.equal(signIn.status, 200, await signIn.text());
      const setCookie = signIn.headers.get('set-cookie') ?? '';
      assert.match(setCookie, /^__Host-portcullis-console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/);
      const value = setCookie.split(';')[0]!.split('=')[1]!;
      assert.equal((await fetch(new URL('/api/console/me', gw.url), { headers: { cookie: `__Host-portcullis-console=${value}` } })).status, 200);
      assert.equal(
        (await fetch(new URL('/api/console/me', gw.url), { headers: { cookie: `portcullis-console=${value}` } })).status,
        401,
        'not the plain name: a sibling site could have set that one',
      );
      assert.ok(gw.gateway.consoleUrl?.startsWith(`${publicUrl}/sign-in#dev=`), 'the link names the public URL');
    } finally {
      await gw.stop();
    }
  });
});

describe('the console with http.allowedOrigins', () => {
  it('still takes changes from its own page', async () => {
    const gw = await startTestGateway({
      http: { allowedOrigins: ['http://inspector.localhost:6274'] },
      connections: { everything: { stdio: everythingStdio() } },
    });
    try {
      const tester = await consoleSignIn(gw, 'tester');
      assert.equal((await tester.post('/api/reviews/rv_none/approve')).status, 404, 'through to the reviews API');
      assert.equal((await tester.post('/api/reviews/rv_none/approve', {}, { origin: 'http://localhost:1' })).status, 403, 'an origin not listed');
    } finally {
      await gw.stop();
    }
  });
});

describe('the console across a gateway restart', () => {
  it('keeps people signed in (the store has their sessions), and the dev link stays the same', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-console-restart-'));
    const config = { dataDir, connections: { everything: { stdio: everythingStdio() } } };
    try {
      const first = await startTestGateway(config);
      const link = first.gateway.consoleUrl!.split('#')[1];
      const tester = await consoleSignIn(first, 'tester');
      await first.stop();
      const second = await startTestGateway(config);
      try {
        assert.equal(second.gateway.consoleUrl!.split('#')[1], link);
        const me = await fetch(new URL('/api/console/me', second.url), { headers: { cookie: tester.cookie } });
        assert.equal(me.status, 200);
        assert.equal(((await me.json()) as { csrfToken: string }).csrfToken, tester.csrf, 'the same session');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
