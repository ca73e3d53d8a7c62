import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveSecretString } from '../../src/core/secrets.js';
import type { SessionInfo } from '../../src/pipeline/stage.js';
import { ErrorCode } from '../../src/protocol/jsonrpc.js';
import { loadSigningKey } from '../../src/recording/keys.js';
import { Recorder } from '../../src/recording/recorder.js';
import type { SessionChain } from '../../src/recording/session-chain.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { SessionRecording } from '../../src/recording/session-recording.js';
import { nowUs } from '../../src/recording/time.js';
import type { Store } from '../../src/store/store.js';
import { openSessionRow } from '../../src/store/types.js';
import { recordingRefusal, WriteAheadTap } from '../../src/exchange/write-ahead-tap.js';
import { allEvents } from '../helpers/recorded.js';
import { sqliteTestStore, type TestStore } from '../helpers/stores.js';

/**
 * The write-ahead tap on its own, over a real recorder and a SQLite store (no gateway): what it records of a
 * message's passage, that it says "go" only once that is durable, and that a refusal gives the recording up once.
 */

const quiet = pino({ level: 'silent' });
const info: SessionInfo = {
  id: 'unused',
  connection: 'c',
  identity: { subject: 'u', issuer: 'test', groups: [] },
  cancellation: () => new AbortController().signal,
  requestUpstream: () => Promise.reject(new Error('not here')),
  refusePending: () => {},
};

describe('WriteAheadTap', () => {
  let ts: TestStore;
  let store: Store;
  let recorder: Recorder;
  let n = 0;

  before(async () => {
    ts = sqliteTestStore();
    store = await ts.open();
    const { privateKey } = generateKeyPairSync('ed25519');
    process.env.PORTCULLIS_TEST_TAP_KEY = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const key = loadSigningKey('/nonexistent', resolveSecretString('${env:PORTCULLIS_TEST_TAP_KEY}'));
    recorder = await Recorder.start({ store, instanceId: 'gw-tap', key, mode: 'write-ahead', log: quiet });
  });
  after(async () => {
    await recorder?.close();
    await store?.close();
    await ts?.destroy();
  });

  function recording(): { id: string; rec: SessionRecording; chain: SessionChain } {
    const id = `tap-${++n}`;
    const row = openSessionRow({ id, instanceId: recorder.instanceId, connection: 'c', subject: 'u', openedAtUs: nowUs() });
    const chain = recorder.openSession(row);
    const rec = new SessionRecording(recorder, chain);
    rec.lifecycle('open', openingDetails(row));
    return { id, rec, chain };
  }

  async function messages(id: string) {
    return (await allEvents(store, id))
      .filter((e) => e.kind === 'message' || e.kind === 'verdict')
      .map((e) => [e.kind, e.boundary, e.kind === 'verdict' ? JSON.parse(e.payload).stage : e.payload, e.forwarded]);
  }

  it('without a recording it says go at once and collects nothing', () => {
    let failed = 0;
    const tap = new WriteAheadTap(undefined, () => failed++);
    const ctx = tap.context(info, 'toServer', undefined);
    assert.equal(ctx.verdicts, undefined);
    assert.equal(tap.passage('toServer', { text: '{}', ctx }, '{}'), undefined);
    assert.equal(tap.recordVerdict({ stage: 's', action: 'answer', direction: 'toServer' }), true);
    assert.equal(tap.close('done'), undefined);
    assert.equal(failed, 0);
  });

  it('a message no stage acted on is one relayed event, durable when passage says go', async () => {
    const { id, rec } = recording();
    const tap = new WriteAheadTap(rec, () => assert.fail('not refused'));
    const ctx = tap.context(info, 'toServer', undefined);
    assert.deepEqual(ctx.verdicts, []);
    const durable = tap.passage('toServer', { text: '{"id":"a"}', ctx }, '{"id":1}');
    assert.ok(durable instanceof Promise, 'write-ahead: forwarding waits for the commit');
    await durable;
    assert.deepEqual(await messages(id), [['message', 'relayed', '{"id":"a"}', '{"id":1}']]);
    await tap.close('done');
  });

  it('a message a stage acted on is received, its verdicts, then delivered; verdicts after that are recorded as they come', async () => {
    const { id, rec } = recording();
    const tap = new WriteAheadTap(rec, () => assert.fail('not refused'));
    const ctx = tap.context(info, 'toServer', undefined);
    tap.verdict({ stage: 'mask', action: 'rewrite', direction: 'toServer' }, ctx);
    await tap.passage('toServer', { text: '{"secret":1}', ctx }, '{"masked":1}');
    tap.verdict({ stage: 'late', action: 'pass', direction: 'toServer' }, ctx);
    await tap.close('done');
    assert.deepEqual(await messages(id), [
      ['message', 'received', '{"secret":1}', null],
      ['verdict', null, 'mask', null],
      ['message', 'delivered', '{"masked":1}', null],
      ['verdict', null, 'late', null],
    ]);
  });

  it('a server message a stage stripped of sensitive content is kept as its digest, never its text', async () => {
    const { id, rec } = recording();
    const tap = new WriteAheadTap(rec, () => assert.fail('not refused'));
    const ctx = tap.context(info, 'toClient', undefined);
    tap.verdict({ stage: 'mask', action: 'rewrite', direction: 'toClient', sensitive: true }, ctx);
    assert.equal(tap.received('toClient', '{"token":"s3cr3t-value"}', ctx), true);
    await tap.close('done');
    const received = (await allEvents(store, id)).find((e) => e.boundary === 'received')!;
    assert.doesNotMatch(received.payload, /s3cr3t-value/);
    assert.match(received.payload, /"digest"/);
  });

  it("the gateway's own answers are kept as digests; a cut-off fragment that cannot be masked, too", async () => {
    const { id, rec } = recording();
    const tap = new WriteAheadTap(rec, () => assert.fail('not refused'));
    tap.recordGatewayAnswer('portcullis-1', '{"result":{"tools":["secret-tool"]}}');
    tap.recordCutOff(
      '{"partial":"s3cr3t',
      'the process exited',
      () => {
        throw new Error('cannot mask');
      },
      info,
      quiet,
    );
    await tap.close('done');
    const events = await allEvents(store, id);
    const text = events.map((e) => e.payload).join('\n');
    assert.match(text, /"gatewayRequest":"portcullis-1"/);
    assert.doesNotMatch(text, /secret-tool|s3cr3t/);
    assert.ok(events.some((e) => e.kind === 'truncated'));
  });

  it('a refused append says never, gives the recording up and tells the session once; after that nothing is recorded', () => {
    const { rec, chain } = recording();
    const failures: Error[] = [];
    const tap = new WriteAheadTap(rec, (err) => failures.push(err));
    chain.broken = true;
    const ctx = tap.context(info, 'toServer', undefined);
    assert.equal(tap.passage('toServer', { text: '{}', ctx }, '{}'), false);
    assert.equal(tap.recordVerdict({ stage: 's', action: 'answer', direction: 'toServer' }), true, 'given up: no recording, nothing refused');
    assert.equal(tap.recording, false);
    assert.equal(failures.length, 1);
    assert.match(failures[0]!.message, /unavailable/);
    assert.equal(recordingRefusal(4).error?.code, ErrorCode.RecordingUnavailable);
  });

  it('anything but a refusal of the store is a defect and is thrown, not swallowed', () => {
    const { rec } = recording();
    const tap = new WriteAheadTap(rec, () => assert.fail('not a refusal'));
    const ctx = tap.context(info, 'toServer', undefined);
    ctx.verdicts = undefined;
    const bad = { stage: 'x', action: 'pass', direction: 'toServer', details: { n: 1n } } as never;
    assert.throws(() => tap.recordVerdict(bad), TypeError);
  });
});
