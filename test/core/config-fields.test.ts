import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { z } from 'zod';
import { duration, durationOrOff, overlay, referenceOnly, secretMap, size, sizeValue } from '../../src/core/config-fields.js';
import type { SecretSources } from '../../src/core/secrets.js';

/** The field types the feature slices of the config are built from, on their own (no config file, no loader). */

const sources: SecretSources = {
  env: { TOKEN: 'tok-value' },
  readFile: (path) => {
    throw Object.assign(new Error(`no file ${path}`), { code: 'ENOENT' });
  },
};

/** The messages of a failed parse (the value must not parse). */
function messages(schema: z.ZodType, value: unknown): string[] {
  const r = schema.safeParse(value);
  assert.equal(r.success, false, `expected ${JSON.stringify(value)} to be refused`);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('a duration is ms: units, a bare number of seconds, the default when absent; anything else names what is expected', () => {
  const d = duration('15s');
  assert.equal(d.parse(undefined), 15_000);
  assert.equal(d.parse('500ms'), 500);
  assert.equal(d.parse('2m'), 120_000);
  assert.equal(d.parse(3), 3000);
  assert.deepEqual(messages(d, 'soon'), [': expected a duration such as 30s, 15m or 1h, found "soon"']);
  assert.deepEqual(messages(d, -1), [': expected a duration such as 30s, 15m or 1h, found -1']);
});

test('a duration or off: off is undefined, so the wait it sets is turned off', () => {
  const d = durationOrOff('1s');
  assert.equal(d.parse(undefined), 1000);
  assert.equal(d.parse('off'), undefined);
  assert.equal(d.parse('5m'), 300_000);
  assert.deepEqual(messages(d, 'never'), [': expected a duration such as 1s or 5m, or off, found "never"']);
});

test('a size is bytes: binary and decimal units, a bare number of bytes; zero is refused (it would refuse every message)', () => {
  const s = size('16MiB');
  assert.equal(s.parse(undefined), 16 * 1024 * 1024);
  assert.equal(s.parse('512KiB'), 512 * 1024);
  assert.equal(s.parse('1MB'), 1_000_000);
  assert.equal(s.parse(4096), 4096);
  assert.deepEqual(messages(s, '0'), [': expected a size such as 16MiB or 512KiB, found "0"']);
  assert.deepEqual(messages(s, '3 parsecs'), [': expected a size such as 16MiB or 512KiB, found "3 parsecs"']);
  assert.deepEqual(messages(sizeValue(), undefined).length, 1, 'without a default, a size must be given');
});

test('a secret map resolves references, and refuses a literal under a credential-looking name, naming the key', () => {
  const m = secretMap(sources, 'header');
  const ok = m.parse({ Authorization: 'Bearer ${env:TOKEN}', 'X-Team': 'blue' });
  assert.equal(ok['Authorization']!.reveal(), 'Bearer tok-value');
  assert.equal(ok['X-Team']!.reveal(), 'blue');
  assert.deepEqual(messages(m, { 'X-Api-Key': 'literal' }), [
    'X-Api-Key: this header looks like a credential, so its value must be a reference such as ${env:NAME} or ${file:PATH}, not a literal',
  ]);
  assert.deepEqual(messages(m, { Authorization: '${env:MISSING}' }).length, 1);
  assert.ok(!messages(m, { Authorization: '${env:MISSING}' })[0]!.includes('tok-value'));
});

test('a reference-only credential refuses a literal, and its resolved value never shows in an error', () => {
  const r = referenceOnly(sources, 'an API token');
  assert.equal(r.parse('${env:TOKEN}').reveal(), 'tok-value');
  assert.deepEqual(messages(r, 'tok-value'), [': an API token must be a reference such as ${file:/run/secrets/…} or ${env:NAME}, not a literal']);
});

test('overlay: the keys a connection gives replace the gateway-wide ones; absent and undefined keys keep them', () => {
  const base = { detectors: ['secrets'], enabled: true, fields: ['password'] };
  assert.deepEqual(overlay(base, {}), base);
  assert.deepEqual(overlay(base, { enabled: false, detectors: undefined }), { detectors: ['secrets'], enabled: false, fields: ['password'] });
  assert.deepEqual(overlay(base, { fields: [] }), { detectors: ['secrets'], enabled: true, fields: [] }, 'an empty list is a value, not absence');
  assert.deepEqual(base, { detectors: ['secrets'], enabled: true, fields: ['password'] }, 'the gateway-wide value is not changed');
});
