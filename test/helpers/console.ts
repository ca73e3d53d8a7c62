import type { TestGateway } from './gateway.js';
import { signInAsUser } from './idp.js';

/** A person signed in to a test gateway's console over plain HTTP: their cookie and CSRF token, and calls as them. */
export interface ConsoleCaller {
  cookie: string;
  csrf: string;
  /** The Set-Cookie header the sign-in answered with. */
  setCookie: string;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  /** A change as the console page makes it: the gateway's Origin and the CSRF token. */
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

/** Signs `user` in with the dev identity, as the sign-in page does (the key from the printed link, the page's Origin). */
export async function consoleSignIn(gw: TestGateway, user: string): Promise<ConsoleCaller> {
  const key = gw.gateway.devIdentity?.consoleKey;
  if (key === undefined) throw new Error('this test gateway has no dev identity');
  const res = await fetch(new URL('/auth/dev', gw.url), {
    method: 'POST',
    headers: { origin: gw.url, 'content-type': 'application/json' },
    body: JSON.stringify({ user, key }),
  });
  if (res.status !== 200) throw new Error(`dev sign-in as ${user}: HTTP ${res.status} ${await res.text()}`);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0]!;
  await res.body?.cancel();
  const me = (await (await fetch(new URL('/api/console/me', gw.url), { headers: { cookie } })).json()) as { csrfToken: string };
  const caller: ConsoleCaller = {
    cookie,
    csrf: me.csrfToken,
    setCookie,
    get: (path, headers = {}) => fetch(new URL(path, gw.url), { headers: { cookie, ...headers } }),
    post: (path, body = {}, headers = {}) =>
      fetch(new URL(path, gw.url), {
        method: 'POST',
        headers: { cookie, origin: gw.url, 'content-type': 'application/json', 'x-portcullis-csrf': me.csrfToken, ...headers },
        body: JSON.stringify(body),
      }),
  };
  return caller;
}

/** A sign-in started at the gateway: where it sends the browser, and the login cookie it set (whole, and as sent back). */
export async function startConsoleSignIn(gw: TestGateway, query = ''): Promise<{ to: URL; setCookie: string; cookie: string }> {
  const res = await fetch(new URL(`/auth/login${query}`, gw.url), { redirect: 'manual' });
  if (res.status !== 302) throw new Error(`/auth/login: HTTP ${res.status} ${await res.text()}`);
  await res.body?.cancel();
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { to: new URL(res.headers.get('location')!), setCookie, cookie: setCookie.split(';')[0]! };
}

/** Back at the gateway's callback with `cookie` (the login cookie, or none): its redirect and the session cookie it set. */
export async function finishConsoleSignIn(
  callback: URL,
  cookie: string,
): Promise<{ status: number; location: string | null; cookie: string; body: string; headers: Headers }> {
  const res = await fetch(callback, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  const session = res.headers.getSetCookie().find((c) => c.startsWith('portcullis-console='));
  return { status: res.status, location: res.headers.get('location'), cookie: (session ?? '').split(';')[0]!, body: await res.text(), headers: res.headers };
}

/** A whole console sign-in as `user` at `idp` (its development login and consent pages): the session cookie. */
export async function consoleSignInAtIdp(gw: TestGateway, idp: { issuer: string }, user: string): Promise<string> {
  const started = await startConsoleSignIn(gw, `?issuer=${encodeURIComponent(idp.issuer)}`);
  const callback = await signInAsUser(started.to.href, user, idp.issuer);
  if (callback === undefined) throw new Error('the IdP did not send the browser back');
  const done = await finishConsoleSignIn(callback, started.cookie);
  if (done.status !== 302 || done.cookie === '') throw new Error(`console sign-in as ${user}: HTTP ${done.status} ${done.body}`);
  return done.cookie;
}

/** Reads a console cookie's live stream (/api/console/live): `events` fills as they come, until `signal` aborts. */
export async function readLiveEvents(gw: Pick<TestGateway, 'url'>, cookie: string, signal: AbortSignal): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(new URL('/api/console/live', gw.url), { headers: { cookie }, signal });
  if (res.headers.get('content-type') !== 'text/event-stream') throw new Error(`/api/console/live: HTTP ${res.status} ${await res.text()}`);
  const events: Array<Record<string, unknown>> = [];
  void (async () => {
    let buffer = '';
    try {
      for await (const chunk of res.body!) {
        buffer += Buffer.from(chunk).toString();
        for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          if (frame.startsWith('data: ')) events.push(JSON.parse(frame.slice(6)) as Record<string, unknown>);
        }
      }
    } catch {
      // aborted
    }
  })();
  return events;
}
