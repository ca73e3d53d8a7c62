import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The console's built files (Vite's output in dist/console), read into memory at start and served with a strict
 * Content-Security-Policy: scripts, styles and connections only from the gateway itself, nothing inline, no
 * framing. Hashed assets are cached for good; every console route gets index.html, and the page routes itself.
 */

export const consoleCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const securityHeaders: Record<string, string> = {
  'content-security-policy': consoleCsp,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** Where `npm run build` puts the console (dist/console, next to dist/src). */
export const builtConsoleDir = fileURLToPath(new URL('../../console/', import.meta.url));

/** The console's page routes: each answers index.html. */
const pageRoutes = /^\/(|sign-in|sessions\/[^/]+|reviews(\/[^/]+)?|admin)\/?$/;

export class StaticFiles {
  readonly #files = new Map<string, { body: Buffer; type: string }>();
  readonly #index: Buffer | undefined;

  constructor(dir: string = builtConsoleDir) {
    if (!existsSync(join(dir, 'index.html'))) return;
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const path = join(d, name);
        if (statSync(path).isDirectory()) walk(path);
        else
          this.#files.set(`/${relative(dir, path).split('\\').join('/')}`, {
            body: readFileSync(path),
            type: types[extname(name)] ?? 'application/octet-stream',
          });
      }
    };
    walk(dir);
    this.#index = this.#files.get('/index.html')?.body;
  }

  get built(): boolean {
    return this.#index !== undefined;
  }

  /** Whether `path` is the console's (a page route or a built file). */
  serves(path: string): boolean {
    return pageRoutes.test(path) || this.#files.has(path);
  }

  serve(req: IncomingMessage, res: ServerResponse, path: string): void {
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET\n');
      return;
    }
    if (this.#index === undefined) {
      res
        .writeHead(503, { ...securityHeaders, 'content-type': 'text/plain; charset=utf-8' })
        .end('The web console was not built: run npm run build (it bundles console/ into dist/console).\n');
      return;
    }
    const file = pageRoutes.test(path) ? { body: this.#index, type: types['.html']! } : this.#files.get(path)!;
    const immutable = path.startsWith('/assets/');
    res.writeHead(200, {
      ...securityHeaders,
      'content-type': file.type,
      'content-length': String(file.body.length),
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }
}
