import { useEffect, useState } from 'preact/hooks';
import { ApiFailure, get, type Me, post, setCsrfToken } from './api';
import { Link } from './components/link';
import { closeLive } from './live';
import { navigate, useLocation } from './router';
import { AdminPage } from './pages/admin';
import { ReplayPage } from './pages/replay';
import { ReviewsPage } from './pages/reviews';
import { SessionsPage } from './pages/sessions';
import { GroupPage } from './pages/group';
import { SignInPage } from './pages/sign-in';

/** The console's frame: who is signed in, the navigation, and the page the path names. */
export function App() {
  const { path } = useLocation();
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  const refresh = () =>
    get<Me>('/api/console/me').then(
      (m) => {
        setCsrfToken(m.csrfToken);
        setMe(m);
      },
      (err: unknown) => {
        setMe(null);
        if (!(err instanceof ApiFailure) || err.status !== 401) console.error(err);
      },
    );
  useEffect(() => void refresh(), []);

  useEffect(() => {
    if (me === null && path !== '/sign-in') navigate(`/sign-in?return=${encodeURIComponent(location.pathname + location.search)}`);
  }, [me, path]);

  // Each page has its own title, so a screen reader and the browser's history say where one is.
  useEffect(() => {
    const page = path.startsWith('/sessions/')
      ? 'Session replay'
      : path.startsWith('/reviews')
        ? 'Reviews'
        : path.startsWith('/admin')
          ? 'Agents, connections and tool pins'
          : path === '/sign-in' || me === null
            ? 'Sign in'
            : 'Sessions';
    document.title = `${page} · Portcullis`;
  }, [path, me]);

  if (me === undefined) return <p class="loading">Loading…</p>;
  if (me === null || path === '/sign-in') return <SignInPage onSignedIn={refresh} signedIn={me !== null} />;

  const signOut = async () => {
    // Signed out whatever the answer: the gateway clears the cookie even of a sign-in that has already ended.
    await post('/auth/sign-out').catch((err: unknown) => console.warn('sign-out', err));
    closeLive();
    setMe(null);
    navigate('/sign-in');
  };
  const nav = [
    { href: '/', label: 'Sessions', active: path === '/' || path.startsWith('/sessions') },
    { href: '/reviews', label: 'Reviews', active: path.startsWith('/reviews') },
    ...(me.roles.admin ? [{ href: '/admin', label: 'Agents & pins', active: path.startsWith('/admin') }] : []),
  ];
  const sessionId = /^\/sessions\/([^/]+)\/?$/.exec(path)?.[1];
  const reviewId = /^\/reviews\/([^/]+)\/?$/.exec(path)?.[1];
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          Portcullis
        </Link>
        <nav aria-label="Main">
          {nav.map((n) => (
            <Link key={n.href} href={n.href} aria-current={n.active ? 'page' : undefined}>
              {n.label}
            </Link>
          ))}
        </nav>
        <div class="who">
          <span title={`${me.identity.subject} (${me.identity.issuer}); groups: ${me.identity.groups.join(', ') || 'none'}`}>
            {me.identity.email ?? me.identity.subject}
            {me.roles.auditor ? ' · auditor' : ''}
            {me.roles.admin ? ' · admin' : ''}
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        {sessionId !== undefined ? (
          // A group id (of modern exchanges) names the session and seq of its first request: `<session id>.<seq>`.
          decodeURIComponent(sessionId).includes('.') ? (
            <GroupPage id={decodeURIComponent(sessionId)} />
          ) : (
            <ReplayPage id={decodeURIComponent(sessionId)} />
          )
        ) : path.startsWith('/reviews') ? (
          <ReviewsPage me={me} focus={reviewId === undefined ? undefined : decodeURIComponent(reviewId)} />
        ) : path.startsWith('/admin') && me.roles.admin ? (
          <AdminPage />
        ) : (
          <SessionsPage me={me} />
        )}
      </main>
    </>
  );
}
