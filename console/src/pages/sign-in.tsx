import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { get, post } from '../api';
import { navigate } from '../router';

interface Options {
  issuers: Array<{ issuer: string; label: string }>;
  devUsers: string[] | null;
}

const keyStore = 'portcullis-dev-key';

/**
 * The dev sign-in key, from the link the gateway printed (#dev=…, a fragment no request carries). It is kept for
 * this tab only and taken out of the address bar, so it is neither bookmarked nor shown over a shoulder.
 */
export function captureDevKey(): void {
  const m = /(?:^#|&)dev=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m === null) return;
  sessionStorage.setItem(keyStore, m[1]!);
  history.replaceState(null, '', location.pathname + location.search);
}

/** Signing in: with an identity provider (the browser goes there and back), or as a dev-identity user. */
export function SignInPage({ onSignedIn, signedIn }: { onSignedIn: () => Promise<void>; signedIn: boolean }) {
  const [options, setOptions] = useState<Options | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [known] = useState(() => sessionStorage.getItem(keyStore) ?? '');
  const [key, setKey] = useState(known);
  const back = new URLSearchParams(location.search).get('return') ?? '/';
  const returnTo = back.startsWith('/') && !back.startsWith('//') && !back.startsWith('/sign-in') ? back : '/';

  useEffect(() => {
    get<Options>('/api/console/sign-in').then(setOptions, (err: Error) => setError(err.message));
  }, []);
  useEffect(() => {
    if (signedIn) navigate(returnTo);
  }, [signedIn]);

  const dev = async (user: string) => {
    setError(undefined);
    try {
      await post('/auth/dev', { user, key });
      sessionStorage.setItem(keyStore, key);
      await onSignedIn();
      navigate(returnTo);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <main id="main" class="sign-in">
      <h1>Sign in to Portcullis</h1>
      <Alert message={error} />
      {options === undefined ? (
        <p>Loading…</p>
      ) : (
        <>
          {options.issuers.map((i) => (
            <p key={i.issuer}>
              <a class="button primary" href={`/auth/login?issuer=${encodeURIComponent(i.issuer)}&return=${encodeURIComponent(returnTo)}`}>
                Sign in with {i.label}
              </a>
            </p>
          ))}
          {options.devUsers !== null && (
            <section aria-labelledby="dev-users">
              <h2 id="dev-users">Dev identity</h2>
              <p class="hint">The quick start's local identity: pick a user (their groups come from identity.dev.users).</p>
              {known === '' && (
                <p>
                  <label>
                    Dev sign-in key (in the console link the gateway printed at start, after <code>#dev=</code>)
                    <input
                      name="dev-key"
                      autocomplete="off"
                      spellcheck={false}
                      value={key}
                      onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value.trim())}
                    />
                  </label>
                </p>
              )}
              <ul class="dev-users">
                {options.devUsers.map((u) => (
                  <li key={u}>
                    <button type="button" onClick={() => void dev(u)}>
                      Sign in as {u}
                    </button>
                  </li>
                ))}
              </ul>
            </section>
          )}
          {options.issuers.length === 0 && options.devUsers === null && (
            <p>No identity provider is set up for the console: give an issuer a clientId (identity.issuers[].clientId).</p>
          )}
        </>
      )}
    </main>
  );
}
