import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialScrubber, minimumCredentialLength } from '../../src/scrub/credential-scrubber.js';
import { base64Core } from '../../src/scrub/encoded-forms.js';

/**
 * The scrubber shared by the gateway and the agent: every spelling of an injected credential a server may send back
 * is replaced by a marker naming it, and nothing else is touched.
 */

const secret = 'sk-live_9Qz/T+4r"x&w=Lm\\8';
const token = 'tok-0123456789abcdef';
const scrubber = new CredentialScrubber([
  { name: 'api.headers.Authorization', value: secret },
  { name: 'api.headers.X-Api-Key', value: token },
]);
const marker = '[REDACTED:credential:api.headers.Authorization]';

/** Every character as a `\u` escape, as some encoders write non-ASCII or all "unsafe" characters. */
function allUnicodeEscaped(s: string): string {
  return [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
}

/** The base64 of `value` inside a longer base64 text, starting `offset` bytes past a 3-byte boundary. */
function embeddedBase64(value: string, offset: number, alphabet: 'base64' | 'base64url' = 'base64'): string {
  return Buffer.from(`${'P'.repeat(offset)}${value}:suffix`).toString(alphabet);
}

function assertScrubbed(text: string, forms: string[] = []): string {
  const out = scrubber.scrub(text);
  for (const f of [secret, token, ...forms]) assert.ok(!out.includes(f), `${JSON.stringify(f)} survived in ${out}`);
  return out;
}

describe('the credential scrubber', () => {
  it('replaces a value as is, with a marker naming it', () => {
    assert.equal(scrubber.scrub(`Authorization: Bearer ${secret}`), `Authorization: Bearer ${marker}`);
  });

  it('replaces the JSON-escaped value and keeps the JSON valid', () => {
    const text = JSON.stringify({ headers: { authorization: `Bearer ${secret}` } });
    const out = assertScrubbed(text, [JSON.stringify(secret).slice(1, -1)]);
    assert.deepEqual(JSON.parse(scrubber.scrubJson(text)), { headers: { authorization: `Bearer ${marker}` } });
    assert.ok(out.includes(marker));
  });

  it('replaces the value with every character \\u-escaped (the agent missed this)', () => {
    const escaped = allUnicodeEscaped(secret);
    const text = `{"a":"${escaped}"}`;
    assert.equal(JSON.parse(text).a, secret, 'the fixture really is the secret');
    const out = assertScrubbed(text, [escaped]);
    assert.equal(out, `{"a":"${marker}"}`);
  });

  it('replaces mixes of escapes: some characters \\u-escaped, \\/ for a slash, nested JSON', () => {
    const mixed = secret.replace('/', '\\/').replace('&', '\\u0026').replace('"', '\\"').replace('\\8', '\\\\8').replace('s', '\\u0073');
    assert.equal(JSON.parse(`"${mixed}"`), secret);
    assertScrubbed(`{"a":"${mixed}"}`);
    const nested = JSON.stringify({ text: JSON.stringify({ authorization: secret }) });
    assertScrubbed(nested);
    const nestedEscapes = JSON.stringify({ text: `{"k":"${allUnicodeEscaped(secret)}"}` });
    assertScrubbed(nestedEscapes, [allUnicodeEscaped(secret)]);
  });

  it('replaces URL-encoded values: either hex case, twice encoded, + for a space', () => {
    const upper = encodeURIComponent(secret);
    const lower = upper.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase());
    const everyByte = [...Buffer.from(secret)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const twice = encodeURIComponent(upper);
    for (const form of [upper, lower, everyByte, twice]) assertScrubbed(`GET /cb?token=${form}&x=1`, [form]);
    const spaced = new CredentialScrubber([{ name: 'p', value: 'correct horse battery' }]);
    assert.equal(spaced.scrub('q=correct+horse+battery'), 'q=[REDACTED:credential:p]');
  });

  for (const alphabet of ['base64', 'base64url'] as const) {
    for (const offset of [0, 1, 2]) {
      it(`replaces ${alphabet} at byte offset ${offset} inside a longer encoding (offsets 1 and 2: the agent missed them)`, () => {
        const encoded = embeddedBase64(secret, offset, alphabet);
        const core = base64Core(Buffer.from(secret), offset, alphabet);
        assert.ok(encoded.includes(core), 'the core is what the encoding holds');
        const out = assertScrubbed(`{"blob":"${encoded}"}`, [core]);
        assert.match(out, /\[REDACTED:credential:api\.headers\.Authorization\]/);
      });
    }
  }

  it('replaces a Basic credential (base64 of user:password) whatever comes before the password', () => {
    for (const user of ['a', 'ab', 'abc']) assertScrubbed(`Authorization: Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`);
  });

  it('replaces hex, lower and upper case, and inside a longer hex dump', () => {
    const hex = Buffer.from(secret).toString('hex');
    for (const form of [hex, hex.toUpperCase(), `00ff${hex}ff00`]) assertScrubbed(`dump: ${form}`, [hex, hex.toUpperCase()]);
  });

  it('replaces every credential it knows in one text, and every occurrence', () => {
    const out = scrubber.scrub(`${token} ${secret} ${token}`);
    assert.equal(out, `[REDACTED:credential:api.headers.X-Api-Key] ${marker} [REDACTED:credential:api.headers.X-Api-Key]`);
  });

  it('replaces a value containing another one whole', () => {
    const s = new CredentialScrubber([
      { name: 'short', value: 'abcdefgh' },
      { name: 'long', value: 'abcdefgh-ijklmnop' },
    ]);
    assert.equal(s.scrub('x abcdefgh-ijklmnop y abcdefgh'), 'x [REDACTED:credential:long] y [REDACTED:credential:short]');
  });

  it(`leaves values shorter than ${minimumCredentialLength} characters alone: they would mangle ordinary text`, () => {
    const s = new CredentialScrubber([
      { name: 'flag', value: 'true' },
      { name: 'pin', value: '1234567' },
    ]);
    assert.equal(s.size, 0);
    assert.equal(s.scrub('true 1234567'), 'true 1234567');
  });

  it('returns the very same string when nothing is there, including near misses', () => {
    for (const text of ['{"jsonrpc":"2.0","id":1,"result":{}}', `{"a":"${secret.slice(0, -1)}"}`, `50% off \\n ${token.slice(1)}`]) {
      assert.equal(scrubber.scrub(text), text);
    }
  });

  it('keeps JSON valid when a match spans JSON syntax, scrubbing keys too', () => {
    const s = new CredentialScrubber([{ name: 'k', value: 'a","b":"c' }]);
    const text = '{"x":"a","b":"c","a\\",\\"b\\":\\"c":1}';
    const out = s.scrubJson(text);
    const parsed = JSON.parse(out) as Record<string, unknown>;
    assert.ok(!JSON.stringify(parsed).includes('a\\",\\"b'), out);
    assert.ok(
      Object.keys(parsed).some((k) => k.includes('[REDACTED:credential:k]')),
      out,
    );
  });

  it('stays linear on a long run of backslashes next to a credential (a hostile server cannot stall the gateway)', () => {
    // With unbounded backslash runs in the patterns this took minutes (quadratic backtracking); now milliseconds.
    const text = `{"a":"${secret.replaceAll('\\', '\\\\').replaceAll('"', '\\"')} ${'\\'.repeat(400_000)}x"}`;
    const out = scrubber.scrub(text);
    assert.ok(out.startsWith(`{"a":"${marker} `), out.slice(0, 80));
  });

  it('scales: a thousand credentials and a megabyte of text without any', () => {
    const many = new CredentialScrubber(Array.from({ length: 1000 }, (_, i) => ({ name: `c${i}`, value: `credential-${i}-${'x'.repeat(i % 7)}-value` })));
    const text = JSON.stringify({ text: 'the quick brown fox\n '.repeat(50_000) });
    assert.equal(many.scrub(text), text);
    assert.equal(many.scrub(`${text} credential-999-xxxxx-value`).endsWith('[REDACTED:credential:c999]'), true);
  });
});
