import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { finishConsoleSignIn, startConsoleSignIn } from '../helpers/console.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { consoleClientSecret, signInAsUser, startTestIdp, type TestIdp } from '../helpers/idp.js';

/**
 * The console's sign-in with a real OpenID provider (`oidc-provider`): the authorization-code flow with PKCE, state
 * and nonce, the gateway as a confidential client (and as a public one), the identity and groups from the token
 * the gateway verifies, single-use state, no open redirect, and the IdP's refusals shown as a page.
 */

process.env.PORTCULLIS_TEST_CONSOLE_CLIENT_SECRET = consoleClientSecret;

/** The browser's cookie that binds a sign-in in flight to it, as the gateway set it at /auth/login. */
let loginCookie = '';

/** Starts a sign-in at the gateway: where it sends the browser (and the browser keeps the gateway's login cookie). */
async function startSignIn(gw: TestGateway, query: string): Promise<URL> {
  const { to, setCookie, cookie } = await startConsoleSignIn(gw, query);
  assert.match(setCookie, new RegExp(`^portcullis-login=${to.searchParams.get('state')}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=600$`));
  loginCookie = cookie;
  return to;
}

/** Comes back to the gateway's callback (with the login cookie, unless told otherwise). */
const finishSignIn = (callback: URL, cookie = loginCookie) => finishConsoleSignIn(callback, cookie);

describe('console sign-in with an OpenID provider', () => {
  let idp: TestIdp;
  let gw: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    gw = await startTestGateway({
      identity: {
        issuers: [
          {
            issuer: idp.issuer,
            clientId: 'portcullis-cli',
            console: { clientId: 'portcullis-console', clientSecret: '${env:PORTCULLIS_TEST_CONSOLE_CLIENT_SECRET}', label: 'Test IdP' },
          },
        ],
      },
      roles: { auditors: ['sre'] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  it('offers the IdP on the sign-in page, by its label, and no dev users', async () => {
    const body = await (await fetch(new URL('/api/console/sign-in', gw.url))).json();
    assert.deepEqual(body, { issuers: [{ issuer: idp.issuer, label: 'Test IdP' }], devUsers: null });
    assert.ok(gw.gateway.consoleUrl?.endsWith('/'), 'no dev link in the banner');
    assert.equal((await fetch(new URL('/auth/dev', gw.url), { method: 'POST', headers: { origin: gw.url }, body: '{}' })).status, 404);
  });

  it('sends the browser to the IdP with PKCE (S256), state, nonce and the gateway as the resource', async () => {
    const to = await startSignIn(gw, '');
    assert.equal(to.origin, idp.issuer);
    const p = to.searchParams;
    assert.equal(p.get('client_id'), 'portcullis-console');
    assert.equal(p.get('response_type'), 'code');
    assert.equal(p.get('redirect_uri'), `${gw.url}/auth/callback`);
    assert.equal(p.get('code_challenge_method'), 'S256');
    assert.match(p.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((p.get('state') ?? '').length >= 32);
    assert.ok((p.get('nonce') ?? '').length >= 32);
    assert.equal(p.get('resource'), gw.url);
    assert.deepEqual(p.get('scope')?.split(' '), ['openid', 'profile', 'email'], 'no offline_access: the console keeps no refresh token');
  });

  it('signs the person in as the IdP says, with the groups of its token, and goes back where they were', async () => {
    const callback = await signInAsUser((await startSignIn(gw, `?return=${encodeURIComponent('/reviews/rv_1?x=1')}`)).href, 'ada', idp.issuer);
    assert.ok(callback !== undefined);
    assert.equal(callback.origin + callback.pathname, `${gw.url}/auth/callback`);
    const done = await finishSignIn(callback);
    assert.equal(done.status, 302, done.body);
    assert.equal(done.location, '/reviews/rv_1?x=1');
    const me = (await (await fetch(new URL('/api/console/me', gw.url), { headers: { cookie: done.cookie } })).json()) as {
      identity: { subject: string; issuer: string; groups: string[] };
      roles: { auditor: boolean };
    };
    assert.equal(me.identity.subject, 'ada');
    assert.equal(me.identity.issuer, idp.issuer);
    assert.deepEqual(me.identity.groups, ['eng', 'sre']);
    assert.equal(me.roles.auditor, true, 'roles follow the groups (sre is roles.auditors here)');
    assert.ok(!gw.log.text.includes(callback.searchParams.get('code')!), 'the code is never logged');

    const again = await finishSignIn(callback);
    assert.equal(again.status, 400, 'a callback is taken once');
    assert.match(again.body, /unknown, used already, or older than 10 minutes/);
    assert.equal(again.cookie, '');
  });

  it('refuses a callback in a browser that did not start the sign-in (login CSRF)', async () => {
    // Someone signs in as themselves and hands the callback link to another person, whose browser has no login cookie.
    const callback = await signInAsUser((await startSignIn(gw, '')).href, 'bob', idp.issuer);
    const victim = await finishSignIn(callback!, '');
    assert.equal(victim.status, 400);
    assert.match(victim.body, /not started in this browser/);
    assert.equal(victim.cookie, '', 'nobody is signed in');
    const otherSignIn = await finishSignIn(callback!, 'portcullis-login=some-other-state');
    assert.equal(otherSignIn.status, 400, 'a browser in the middle of another sign-in');
    const own = await finishSignIn(callback!);
    assert.equal(own.status, 302, 'the browser that started it still finishes it');
  });

  it('a person without groups is signed in, and sees only their own sessions', async () => {
    const done = await finishSignIn((await signInAsUser((await startSignIn(gw, '')).href, 'eve', idp.issuer))!);
    assert.equal(done.status, 302);
    const me = (await (await fetch(new URL('/api/console/me', gw.url), { headers: { cookie: done.cookie } })).json()) as {
      identity: { groups: string[] };
      roles: { auditor: boolean };
    };
    assert.deepEqual(me.identity.groups, []);
    assert.equal(me.roles.auditor, false);
    assert.equal((await fetch(new URL('/api/sessions?user=ada', gw.url), { headers: { cookie: done.cookie } })).status, 403);
  });

  it('never goes back to another site after signing in (no open redirect)', async () => {
    for (const evil of [
      '//evil.example/x',
      'https://evil.example/',
      '/\\evil.example',
      '/\t/evil.example',
      '/\n/evil.example',
      '/..//evil.example',
      '/%09/x\u0101',
    ]) {
      const done = await finishSignIn((await signInAsUser((await startSignIn(gw, `?return=${encodeURIComponent(evil)}`)).href, 'bob', idp.issuer))!);
      assert.equal(done.location, '/', evil);
    }
  });

  it('shows the IdP’s refusal, escaped, on a page of its own', async () => {
    const to = await startSignIn(gw, '');
    const refused = await finishSignIn(
      new URL(
        `/auth/callback?error=access_denied&error_description=${encodeURIComponent('<script>alert(1)</script> said no')}&state=${to.searchParams.get('state')}`,
        gw.url,
      ),
    );
    assert.equal(refused.status, 401);
    assert.match(refused.body, /the identity provider refused the sign-in: access_denied: &#60;script&#62;alert\(1\)&#60;\/script&#62; said no/);
    assert.equal(refused.headers.get('content-security-policy'), "default-src 'none'");
    assert.equal(refused.cookie, '');
  });

  it('refuses an issuer it does not sign in with, and a callback it never started', async () => {
    const other = await fetch(new URL(`/auth/login?issuer=${encodeURIComponent('https://idp.elsewhere.example')}`, gw.url), { redirect: 'manual' });
    assert.equal(other.status, 400);
    assert.match(await other.text(), /is not an issuer the console signs in with/);
    // The browser's cookie matches the state, so what refuses it is that the store never saw this sign-in.
    const forged = await finishSignIn(new URL('/auth/callback?code=made-up&state=made-up', gw.url), 'portcullis-login=made-up');
    assert.equal(forged.status, 400);
    assert.match(forged.body, /unknown, used already, or older than 10 minutes/);
  });

  it('refuses more than 300 sign-ins started in a minute (each keeps a row in the store until it expires)', async () => {
    const busy = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer, clientId: 'portcullis-cli' }] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
    try {
      // Started at the top of a minute's window, so that the count is not reset half-way.
      const second = new Date().getSeconds();
      if (second > 50) await new Promise((r) => setTimeout(r, (61 - second) * 1000));
      const statuses = new Map<number, number>();
      for (let i = 0; i < 301; i++) {
        const res = await fetch(new URL('/auth/login', busy.url), { redirect: 'manual' });
        await res.body?.cancel();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
      assert.deepEqual(
        [...statuses],
        [
          [302, 300],
          [429, 1],
        ],
      );
    } finally {
      await busy.stop();
    }
  });

  it('signs in as a public client too (PKCE without a secret)', async () => {
    const pub = await startTestGateway({
      identity: { issuers: [{ issuer: idp.issuer, clientId: 'portcullis-cli' }] },
      connections: { everything: { stdio: everythingStdio(), access: { groups: ['eng'] } } },
    });
    try {
      const to = await startSignIn(pub, '');
      assert.equal(to.searchParams.get('client_id'), 'portcullis-cli');
      const done = await finishSignIn((await signInAsUser(to.href, 'bob', idp.issuer))!);
      assert.equal(done.status, 302, done.body);
      const me = (await (await fetch(new URL('/api/console/me', pub.url), { headers: { cookie: done.cookie } })).json()) as {
        identity: { subject: string; groups: string[] };
      };
      assert.equal(me.identity.subject, 'bob');
      assert.deepEqual(me.identity.groups, ['eng']);
    } finally {
      await pub.stop();
    }
  });
});
