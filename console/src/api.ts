/**
 * The console's calls to the gateway: same origin, the session cookie rides along, and every change carries the
 * CSRF token the gateway gave at sign-in (/api/console/me). Errors come back as the gateway's own message.
 */

/** Who is signed in, as the gateway knows them (a type-only import: nothing of the server is bundled). */
export type { Identity } from '../../src/core/identity.js';
import type { Identity } from '../../src/core/identity.js';

export interface Me {
  identity: Identity;
  roles: { auditor: boolean; admin: boolean };
  csrfToken: string;
  expiresAt: string;
}

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

let csrfToken = '';

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json', 'x-portcullis-csrf': csrfToken } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: the message is the text itself
  }
  if (!res.ok) throw new ApiFailure((parsed as { error?: string } | undefined)?.error ?? (text || `HTTP ${res.status}`), res.status);
  return parsed as T;
}

export const get = <T>(path: string) => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {});

/** A query string from the entries that have a value. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
