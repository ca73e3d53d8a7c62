import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../net/loopback.js';

/**
 * The gateway's base URLs, which a token's audience names (RFC 8707) and the metadata shows: the configured
 * `http.publicUrl`, else the address it listens on. Never simply the Host a request sent: an allowed host name
 * matches any port, and a token minted for another server on this machine must not be taken for one of ours.
 * On a loopback listen address the other loopback names with the same port count too (a client may say
 * localhost where the gateway says 127.0.0.1).
 */
export class PublicUrls {
  #all: string[] | undefined;
  #origins: string[] | undefined;

  constructor(
    private readonly configured: string | undefined,
    private readonly listening: () => { host: string; port: number },
  ) {}

  /** Every base URL that is this gateway, the primary one first (worked out once, when the port is known). */
  all(): string[] {
    this.#all ??= this.#compute();
    return this.#all;
  }

  /** The origins of those URLs (what a browser sends as Origin from a page of the gateway's). */
  origins(): string[] {
    this.#origins ??= [...new Set(this.all().map((u) => new URL(u).origin))];
    return this.#origins;
  }

  #compute(): string[] {
    if (this.configured !== undefined) return [this.configured];
    const { host, port } = this.listening();
    const own = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (!isLoopbackHost(host)) return [own];
    return [...new Set([own, `http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`])];
  }

  /** The base URL to show a request (metadata, challenges): the one it used, when that is one of ours. */
  for(req: IncomingMessage): string {
    const all = this.all();
    const used = `http://${(req.headers.host ?? '').toLowerCase()}`;
    return all.find((b) => b === used) ?? all[0]!;
  }
}
