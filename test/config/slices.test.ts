import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SecretSources } from '../../src/core/secrets.js';
import { identitySchema } from '../../src/identity/config.js';
import { connectionLimits, connectionLimitsSchema, limitsSchema } from '../../src/limits/config.js';
import { connectionMasking, connectionMaskingSchema, maskingSchema } from '../../src/masking/config.js';
import { pinsSchema } from '../../src/pins/config.js';
import { guardrailsSchema, ruleSchema } from '../../src/policy/config.js';
import { recordingSchema } from '../../src/recording/config.js';
import { notificationsSchema, reviewsSchema } from '../../src/reviews/config.js';
import { upstreamOf, upstreamSchemas } from '../../src/upstream/config.js';

/**
 * Each feature's slice of the config schema parses on its own, into the shape the feature runs with (its type is the
 * schema's output): units converted, runtime names given by the slice. The whole file is tested in load.test.ts.
 */

const sources: SecretSources = { env: { SECRET: 's3cret' }, readFile: () => '' };

test('limits: defaults in bytes and ms under their runtime names; a connection overrides only the keys it gives', () => {
  const l = limitsSchema().parse(undefined);
  assert.equal(l.maxMessageBytes, 16 * 1024 * 1024);
  assert.equal(l.clientBacklogBytes, 8 * 1024 * 1024);
  assert.equal(l.slowClientTimeoutMs, 60_000);
  assert.equal(l.reclaimIdleAfterMs, 1000);
  assert.equal(limitsSchema().parse({ reclaimIdleAfter: 'off' }).reclaimIdleAfterMs, undefined);
  assert.deepEqual(l.principal.requests, { perSecond: 100, burst: 500 });
  const own = connectionLimitsSchema().parse({ sessions: 3, tools: { 'delete_*': { perSecond: 0.5 } } });
  assert.deepEqual(connectionLimits(own, l.connection), {
    sessions: 3,
    stdioProcesses: 64,
    requestsInFlight: 1024,
    tools: { 'delete_*': { perSecond: 0.5, burst: 10 } },
  });
});

test('identity: clock skew and dev token lifetime in ms', () => {
  const i = identitySchema(sources).parse(undefined);
  assert.equal(i.clockSkewMs, 30_000);
  assert.deepEqual(i.dev, { users: {}, allowNonLoopback: false, tokenLifetimeMs: 8 * 3_600_000 });
  assert.deepEqual(i.issuers, []);
});

test('recording: retention and write timeout in ms; optional keys absent when not given', () => {
  const r = recordingSchema(sources).parse(undefined);
  assert.deepEqual(r, { mode: 'write-ahead', sqliteSync: 'normal', retentionAction: 'delete', trustedKeys: [], retentionMs: 0, writeTimeoutMs: 5000 });
});

test('reviews and notifications: timeouts in ms; a webhook secret must be a reference', () => {
  assert.deepEqual(reviewsSchema().parse(undefined), { timeoutMs: 15 * 60_000, progressIntervalMs: 10_000, notify: [] });
  const n = notificationsSchema(sources).parse({ webhooks: [{ name: 'ops', url: 'https://hooks.example/x', secret: '${env:SECRET}' }] });
  assert.equal(n.webhooks[0]!.secret!.reveal(), 's3cret');
  assert.deepEqual(n.webhooks[0]!.events, ['review.created', 'review.decided']);
  assert.equal(notificationsSchema(sources).safeParse({ webhooks: [{ name: 'ops', url: 'https://hooks.example/x', secret: 'literal' }] }).success, false);
});

test('guardrails: a rule compiles its condition and gives its timeout in ms, absent when not given', () => {
  const rule = ruleSchema().parse({ name: 'r', when: 'tool.name == "x"', action: 'review', approvers: ['ops'], timeout: '2m' });
  assert.equal(rule.timeoutMs, 120_000);
  assert.equal('timeout' in rule, false);
  assert.equal(typeof rule.condition, 'function', 'compiled');
  assert.deepEqual(guardrailsSchema().parse(undefined), { default: 'allow', approvals: 1 });
});

test('masking: a connection keeps the gateway-wide keys it does not give, and never the per-group rules', () => {
  const gatewayWide = maskingSchema().parse({ rules: [{ groups: ['ops'], enabled: false }] });
  const own = connectionMaskingSchema().parse({ exclude: ['email'], recordArguments: true });
  const m = connectionMasking(gatewayWide, own);
  assert.deepEqual(m.exclude, ['email']);
  assert.equal(m.recordArguments, true);
  assert.deepEqual(m.detectors, ['secrets', 'pii']);
  assert.equal(m.maxDecodedSize, 16 * 1024 * 1024);
  assert.equal('rules' in m, false);
  assert.deepEqual(connectionMasking(gatewayWide, undefined).replace, { kind: 'redact' });
});

test('pins and upstream: defaults, and the upstream a connection names', () => {
  assert.deepEqual(pinsSchema().parse(undefined), { scan: 'quarantine', duplicateNames: 'flag' });
  const { stdio, http } = upstreamSchemas(sources);
  const s = upstreamOf({ stdio: stdio.parse({ command: 'node', args: ['server.js'] }) });
  assert.equal(s.kind, 'stdio');
  assert.deepEqual(s.kind === 'stdio' && s.args.map((a) => a.reveal()), ['server.js']);
  const h = upstreamOf({ sse: http.parse({ url: 'http://127.0.0.1:9/sse' }) });
  assert.equal(h.kind, 'sse');
  assert.deepEqual(upstreamOf({ agent: 'vpc' }), { kind: 'agent', agent: 'vpc' });
});

test('recording: retentionAction erase needs recording.encryption, and says so', () => {
  const r = recordingSchema(sources).safeParse({ retentionAction: 'erase' });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0]!.path, ['retentionAction']);
  assert.match(r.error!.issues[0]!.message, /recording\.encryption is not configured .*: configure it, or use delete/);
});
