import { useEffect, useState } from 'preact/hooks';

/** Client-side routes over the History API: the gateway answers index.html for each of them. */

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useLocation(): { path: string; search: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const on = () => setTick((t) => t + 1);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return { path: location.pathname, search: new URLSearchParams(location.search) };
}

/** A link that navigates inside the console (a real <a href>, so it also opens in a new tab). */
export function linkHandler(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null) ?? null;
  if (a === null || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target === '_blank') return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/auth/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
}
