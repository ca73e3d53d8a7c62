import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { pino } from 'pino';
import type { SigningKey } from '../../src/recording/keys.js';
import type { RecorderOptions } from '../../src/recording/recorder-options.js';
import { Recorder } from '../../src/recording/recorder.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { SessionRecording } from '../../src/recording/session-recording.js';
import { nowUs } from '../../src/recording/time.js';
import type { AccessRequestRow } from '../../src/store/access-types.js';
import type { ReviewRow } from '../../src/store/review-types.js';
import type { Store } from '../../src/store/store.js';
import { openSessionRow } from '../../src/store/types.js';
import { testSigner } from './encryption.js';
import type { backends, TestStore } from './stores.js';

/**
 * What the store encrypt and erasure tests seal and shred: sessions written by the real recorder (plain, or encrypted
 * when it has a keyring), a review and an access request whose params and reason carry a payload, and markers; and the
 * suite setup they share (a fresh store per backend, a signer, recorders on the store).
 */

/** What a suite of the store encrypt or erasure tests works on: one backend's store, a signer, its recorders. */
export interface SealableSuite {
  /** The store (and its test handle, for SQL behind its back), open from the suite's `before` to its `after`. */
  readonly ts: TestStore;
  readonly store: Store;
  /** The gateways' signing key, and the keys verification trusts (that one). */
  readonly signing: SigningKey;
  readonly trusted: Map<string, string>;
  /** The backend's name, which the suite's ids end with. */
  readonly n: (typeof backends)[number]['name'];
  /** A real recorder on the store as `instanceId`: write-ahead, silent, its sweep an hour away unless `extra` says. */
  start(instanceId: string, extra?: Partial<RecorderOptions>): Promise<Recorder>;
}

/** Sets up a suite on `backend`'s fresh store: called in its describe, it adds the before and after that open and destroy it. */
export function sealableSuite(backend: (typeof backends)[number]): SealableSuite {
  let ts!: TestStore;
  let store!: Store;
  const { key: signing, trusted } = testSigner();
  const log = pino({ level: 'silent' });
  before(async () => {
    ts = backend.make();
    store = await ts.open();
  });
  after(async () => {
    await store?.close();
    await ts?.destroy();
  });
  return {
    get ts() {
      return ts;
    },
    get store() {
      return store;
    },
    signing,
    trusted,
    n: backend.name,
    start: (instanceId, extra = {}) => Recorder.start({ store, instanceId, key: signing, mode: 'write-ahead', log, sweepMs: 3_600_000, ...extra }),
  };
}

/** A marker no recording holds by chance: what must never be found in plain text once a session is encrypted. */
export const marker = (name: string) => `MARKER-${name}-${randomBytes(6).toString('hex')}`;

/** A session of `subject` on connection `db` recorded by `recorder`, left open: one tool call carrying `text`, answered. */
export function record(recorder: Recorder, id: string, subject: string, text: string): SessionRecording {
  const row = openSessionRow({ id, instanceId: recorder.instanceId, connection: 'db', subject, issuer: 'https://idp.test', openedAtUs: nowUs() });
  const rec = new SessionRecording(recorder, recorder.openSession(row));
  rec.lifecycle('open', openingDetails(row));
  rec.message('toServer', 'received', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'query', arguments: { q: text } } }));
  rec.relayed('toClient', JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text } }), JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text } }));
  return rec;
}

/** The session `record` makes, closed (sealed). */
export async function recorded(recorder: Recorder, id: string, subject: string, text: string): Promise<void> {
  await record(recorder, id, subject, text).close('done');
}

/** A pending access request of `subject` to connection `db`, for a minute, giving `reason`. */
export function accessRequest(id: string, subject: string, reason: string): AccessRequestRow {
  return {
    id,
    connection: 'db',
    requesterSubject: subject,
    requesterIssuer: 'https://idp.test',
    requesterEmail: null,
    reason,
    durationMs: 60_000,
    status: 'pending',
    createdAtUs: nowUs(),
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    decisionNote: null,
    expiresAtUs: nowUs() + 60_000_000,
  };
}

/** An approved review of a call in session `sessionId` on connection `db`, with its `params`. */
export function review(id: string, sessionId: string, params: string): ReviewRow {
  return {
    id,
    status: 'approved',
    rule: 'r',
    connection: 'db',
    sessionId,
    instanceId: 'x',
    method: 'tools/call',
    target: 'query',
    virtualServer: null,
    virtualTarget: null,
    params,
    digest: 'd',
    requesterSubject: 'alice',
    requesterIssuer: 'https://idp.test',
    requesterEmail: null,
    approverGroups: ['a'],
    minApprovals: 1,
    approvals: [],
    createdAtUs: nowUs(),
    expiresAtUs: nowUs() + 60_000_000,
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    deciderEmail: null,
    decisionNote: null,
  };
}
