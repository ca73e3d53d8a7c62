import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CiphertextError, eventAad, isSealed, newDataKey, openText, sealText } from '../../src/encryption/envelope.js';
import { ErasedError, type Kek, KekUnavailableError, WrappedKeyError } from '../../src/encryption/kek.js';
import { localKek, localKeyBytes } from '../../src/encryption/keks/local.js';
import { Keyring } from '../../src/encryption/keyring.js';

/** The envelope's building blocks: a sealed value opens only with its key, in its place; a data key only for its owner. */

const text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"héllo wörld"}}}';

describe('envelope: sealing one recorded text', () => {
  it('opens back to the exact text (unicode included), and the stored form shows none of it', () => {
    const key = newDataKey();
    const stored = sealText(key, eventAad('s1', 3, 'payload'), text);
    assert.ok(isSealed(stored));
    assert.ok(!stored.includes('tools/call') && !stored.includes('echo'));
    assert.equal(openText(key, eventAad('s1', 3, 'payload'), stored, 'here'), text);
  });

  it('seals the same text differently each time (a fresh nonce per value)', () => {
    const key = newDataKey();
    assert.notEqual(sealText(key, 'a', text), sealText(key, 'a', text));
  });

  it('refuses a value moved to another event, field or session, or opened with another key', () => {
    const key = newDataKey();
    const stored = sealText(key, eventAad('s1', 3, 'payload'), text);
    for (const aad of [eventAad('s1', 4, 'payload'), eventAad('s1', 3, 'forwarded'), eventAad('s2', 3, 'payload')]) {
      assert.throws(() => openText(key, aad, stored, 'event 3'), CiphertextError);
    }
    assert.throws(() => openText(newDataKey(), eventAad('s1', 3, 'payload'), stored, 'event 3'), /event 3 does not decrypt/);
  });

  it('refuses an altered ciphertext, a truncated one, and a plain text where a sealed one belongs', () => {
    const key = newDataKey();
    const aad = eventAad('s1', 0, 'payload');
    const stored = sealText(key, aad, text);
    const body = Buffer.from(stored.slice(5), 'base64');
    body[20] = (body[20] ?? 0) ^ 1;
    assert.throws(() => openText(key, aad, `pcx1:${body.toString('base64')}`, 'x'), CiphertextError);
    assert.throws(() => openText(key, aad, 'pcx1:AAAA', 'x'), CiphertextError);
    assert.throws(() => openText(key, aad, text, 'x'), CiphertextError);
  });
});

describe('local KEK', () => {
  const material = Buffer.alloc(32, 7);

  it('reads 32 bytes given as base64 or hex, and refuses any other length with how to make one', () => {
    assert.deepEqual(localKeyBytes(material.toString('base64')), material);
    assert.deepEqual(localKeyBytes(` ${material.toString('hex')}\n`), material);
    assert.throws(() => localKeyBytes(Buffer.alloc(16).toString('base64')), /openssl rand -base64 32/);
    assert.throws(() => localKeyBytes('not a key'), /32 random bytes/);
  });

  it('unwraps a data key for its owner only, and only under the same key material', () => {
    const kek = localKek('k1', material);
    const dataKey = newDataKey();
    const wrapped = kek.wrapSync!(dataKey, 's1');
    assert.deepEqual(kek.unwrapSync!(wrapped, 's1'), dataKey);
    assert.throws(() => kek.unwrapSync!(wrapped, 's2'), WrappedKeyError);
    assert.throws(() => localKek('k1', Buffer.alloc(32, 8)).unwrapSync!(wrapped, 's1'), /does not unwrap under KEK 'k1'/);
    const altered = Buffer.from(wrapped.slice(4), 'base64');
    altered[15] = (altered[15] ?? 0) ^ 1;
    assert.throws(() => kek.unwrapSync!(`lk1:${altered.toString('base64')}`, 's1'), WrappedKeyError);
    const cut = Buffer.from(wrapped.slice(4), 'base64').subarray(0, 56);
    assert.throws(() => kek.unwrapSync!(`lk1:${cut.toString('base64')}`, 's1'), /the wrapping is 56 bytes, not the 60/);
  });
});

describe('keyring', () => {
  const k1 = localKek('k1', Buffer.alloc(32, 1));
  const k2 = localKek('k2', Buffer.alloc(32, 2));
  const row = (owner: string, kekId: string, wrapped: string | null) => ({
    owner,
    kekId,
    wrapped,
    createdAtUs: 1,
    erasedAtUs: wrapped === null ? 1_790_000_000_000_000 : null,
    erasedBy: wrapped === null ? 'alice (https://idp)' : null,
    eraseReason: wrapped === null ? 'privacy request 12' : null,
  });

  it('wraps new data keys under the current KEK and opens keys wrapped under an older one', async () => {
    const writer = new Keyring([k1], k1);
    const made = writer.newDataKey('s1');
    assert.equal(made.kekId, 'k1');
    const reader = new Keyring([k1, k2], k2);
    assert.deepEqual(reader.ids, ['k1', 'k2']);
    assert.deepEqual(await reader.dataKey(row('s1', 'k1', made.wrapped as string)), made.key);
    assert.equal(reader.newDataKey('s2').kekId, 'k2');
  });

  it('names the missing KEK, and an erased key with who, when and why', async () => {
    const ring = new Keyring([k2], k2);
    const wrapped = k1.wrapSync!(newDataKey(), 's1');
    await assert.rejects(ring.dataKey(row('s1', 'k1', wrapped)), (e: unknown) => e instanceof KekUnavailableError && /KEK 'k1'/.test(e.message));
    await assert.rejects(ring.dataKey(row('s9', 'k2', null)), (e: unknown) => e instanceof ErasedError && /by alice .*privacy request 12/.test(e.message));
  });

  /** k1 counting its unwraps: a cached key costs none. */
  const counting = () => {
    let unwraps = 0;
    const unwrapSync = (w: string, c: string) => {
      unwraps++;
      return k1.unwrapSync!(w, c);
    };
    const kek: Kek = { ...k1, unwrapSync, unwrap: async (w, c) => unwrapSync(w, c) };
    return { kek, unwraps: () => unwraps };
  };

  it('serves a key it made or unwrapped from its cache while the stored row is the same', async () => {
    const { kek, unwraps } = counting();
    const ring = new Keyring([kek], kek);
    const made = ring.newDataKey('s1');
    assert.equal(await ring.dataKey(row('s1', 'k1', made.wrapped as string)), made.key, 'the same Buffer a live session holds');
    assert.equal(unwraps(), 0);
    const other = k1.wrapSync!(newDataKey(), 's2');
    await ring.dataKey(row('s2', 'k1', other));
    await ring.dataKey(row('s2', 'k1', other));
    assert.equal(unwraps(), 1);
  });

  it('unwraps again when the row changed under its cache: an altered wrapped key is refused, a rotated one opens', async () => {
    const { kek, unwraps } = counting();
    const ring = new Keyring([kek, k2], kek);
    const made = ring.newDataKey('s1');
    const body = Buffer.from((made.wrapped as string).slice('lk1:'.length), 'base64');
    body[20] = (body[20] ?? 0) ^ 1;
    await assert.rejects(ring.dataKey(row('s1', 'k1', `lk1:${body.toString('base64')}`)), WrappedKeyError);
    await assert.rejects(ring.dataKey(row('s1', 'k9', made.wrapped as string)), KekUnavailableError);
    assert.equal(unwraps(), 1);
    // Re-wrapped under k2 (keys rotate): the same key, and the live session's Buffer kept.
    assert.equal(await ring.dataKey(row('s1', 'k2', k2.wrapSync!(made.key, 's1'))), made.key);
    assert.equal(await ring.dataKey(row('s1', 'k1', made.wrapped as string)), made.key);
  });

  it('forgets an erased owner at once: its key is no longer served from the cache', async () => {
    const { kek, unwraps } = counting();
    const ring = new Keyring([kek], kek);
    const made = ring.newDataKey('s1');
    await ring.dataKey(row('s1', 'k1', made.wrapped as string));
    assert.equal(unwraps(), 0);
    ring.forget('s1');
    assert.deepEqual(await ring.dataKey(row('s1', 'k1', made.wrapped as string)), made.key);
    assert.equal(unwraps(), 1, 'unwrapped from the row again');
  });

  it('a KMS key: the new key is cached with its wrapping once the request settles', async () => {
    let unwraps = 0;
    const remote: Kek = {
      id: 'r1',
      provider: 'test',
      description: 'remote',
      wrap: async (k, c) => k1.wrapSync!(k, c).replace('lk1:', 'rk1:'),
      unwrap: async (w, c) => {
        unwraps++;
        return k1.unwrapSync!(w.replace('rk1:', 'lk1:'), c);
      },
    };
    const ring = new Keyring([remote], remote);
    const made = ring.newDataKey('s1');
    const wrapped = await made.wrapped;
    assert.equal(await ring.dataKey(row('s1', 'r1', wrapped)), made.key);
    assert.equal(unwraps, 0);
  });
});
