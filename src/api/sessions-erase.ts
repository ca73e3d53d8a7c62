import type { Hono } from 'hono';
import { HttpError } from '../core/http-error.js';
import type { Identity } from '../core/identity.js';
import { untrustedPath } from '../core/untrusted-text.js';
import { type ControlEnv, replyJsonApi as json, requestUrl, apiRouter } from '../http/kit/route.js';
import { inGroups } from '../identity/roles.js';
import { type ErasingRecorder, type ErasureChoice, type ErasureOutcome, eraseRecordings, NotEncryptedError } from '../recording/erasure.js';
import { optionalString, readJson } from './json-body.js';

/**
 * POST /api/sessions/erase: crypto-shredding of recordings, for admins (roles.admins) only, each a named person: the
 * ledger says who erased what, when and why. A machine credential cannot erase (it names nobody).
 *   POST /api/sessions/erase  { sessions?: [id…], subject?, issuer?, reason } → { erased, accessRequests, notErased }
 * 409 when recordings are not encrypted (there is no key to destroy: retention deletes them instead).
 */
export class SessionsEraseApi {
  constructor(
    private readonly recorder: ErasingRecorder,
    private readonly admins: readonly string[],
  ) {}

  routes(): Hono<ControlEnv> {
    const r = apiRouter();
    r.all('/', async (c) => {
      const identity = c.get('identity');
      if (!inGroups(identity, this.admins))
        throw new HttpError(403, `erasing recordings needs membership of ${this.admins.join(', ') || 'roles.admins (none configured)'}`);
      if (c.req.method !== 'POST') throw new HttpError(405, 'use POST');
      const { choice, reason } = parseErasure(await readJson(c.env.incoming));
      let outcome: ErasureOutcome;
      try {
        outcome = await eraseRecordings(this.recorder, choice, erasedBy(identity), reason);
      } catch (err) {
        if (err instanceof NotEncryptedError) throw new HttpError(409, err.message);
        throw err;
      }
      return json(c, 200, outcome);
    });
    r.all('*', (c) => {
      throw new HttpError(404, `no API at ${untrustedPath(requestUrl(c).pathname)}`);
    });
    return r;
  }
}

/** Who erased, as the data key and the ledger keep it: the admin's subject and issuer. */
function erasedBy(identity: Identity): string {
  return `${identity.subject} (${identity.issuer})`;
}

function parseErasure(body: Record<string, unknown>): { choice: ErasureChoice; reason: string } {
  const reason = optionalString(body, 'reason')?.trim();
  if (!reason) throw new HttpError(400, 'reason is required: why these recordings are erased (kept in the ledger)');
  if (reason.length > 1000) throw new HttpError(400, 'reason must be at most 1000 characters');
  const sessions = body.sessions;
  if (sessions !== undefined && (!Array.isArray(sessions) || !sessions.every((s) => typeof s === 'string' && s !== '') || sessions.length > 10_000))
    throw new HttpError(400, 'sessions must be a list of session ids (at most 10000)');
  const subject = optionalString(body, 'subject');
  const issuer = optionalString(body, 'issuer');
  if (issuer !== undefined && subject === undefined) throw new HttpError(400, 'issuer narrows a subject: give subject too');
  if ((sessions === undefined || sessions.length === 0) && !subject) throw new HttpError(400, 'say what to erase: sessions (a list of ids) or subject');
  return {
    choice: { ...(sessions ? { sessions: sessions as string[] } : {}), ...(subject ? { subject } : {}), ...(issuer ? { issuer } : {}) },
    reason,
  };
}
