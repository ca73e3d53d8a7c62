/**
 * Names and paths a request supplied that match nothing the gateway knows. A client that puts its token in the URL
 * (`/mcp/<jwt>`) must not find it in the log, nor get it reflected back: of such text only a short prefix is kept,
 * printable characters only, with its length. A JWT's first 16 characters are part of its header (the algorithm),
 * never its payload or signature.
 */

const keep = 16;

/** At most 16 characters of `text`, anything outside [A-Za-z0-9._~-] as `?`, and `…(N chars)` when it was longer. */
export function untrustedPrefix(text: string): string {
  const shown = text.slice(0, keep).replace(/[^A-Za-z0-9._~-]/g, '?');
  return text.length > keep ? `${shown}…(${text.length} chars)` : shown;
}

/** A request path for a log line or an error: its first four segments, each cut as untrustedPrefix cuts a name. */
export function untrustedPath(path: string): string {
  const segments = path.split('/').slice(1);
  const shown = segments
    .slice(0, 4)
    .map((s) => (s.length > keep ? `${s.slice(0, keep).replace(/[^A-Za-z0-9._~%-]/g, '?')}…` : s.replace(/[^A-Za-z0-9._~%-]/g, '?')));
  return `/${shown.join('/')}${segments.length > 4 ? '/…' : ''}`;
}
