import type { TestGateway } from './gateway.js';

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
