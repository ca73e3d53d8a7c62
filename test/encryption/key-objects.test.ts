import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { eventAad, isSealed, openText, sealText } from '../../src/encryption/envelope.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { localKek } from '../../src/encryption/keks/local.js';

/**
 * The envelope keeps an OpenSSL key object per data key and draws nonces from a pool (the recorder's hot path): two
 * values sealed alike still differ, and a key the keyring forgets (erased) is no longer served, while its bytes stay
 * as they were for a session that may still be recording under them.
 */

it('every value gets its own nonce, across refills of the pool', () => {
  const key = randomBytes(32);
  const seen = new Set<string>();
  // More values than the pool holds nonces (1024), so it is refilled on the way.
  for (let i = 0; i < 3000; i++) {
    const sealed = sealText(key, 'same place', 'same text');
    assert.ok(isSealed(sealed));
    const nonce = Buffer.from(sealed.slice(5), 'base64').subarray(0, 12).toString('hex');
    assert.ok(!seen.has(nonce), `nonce ${nonce} used twice`);
    seen.add(nonce);
  }
});

it('a data key the keyring forgets is no longer served, but a session still using its Buffer is not sealed under zeros', async () => {
  const kek = localKek('k1', randomBytes(32));
  const keyring = new Keyring([kek], kek);
  const { key } = keyring.newDataKey('s1');
  const copy = Buffer.from(key);
  keyring.forget('s1');
  // A notice of erasure (from the change bus) may reach a replica whose session still records under this key.
  assert.deepEqual(key, copy, 'the bytes are left as they were');
  assert.notDeepEqual(key, Buffer.alloc(32), 'not an all-zero key');
  const sealed = sealText(key, eventAad('s1', 7, 'payload'), '{"hello":"world"}');
  assert.equal(openText(copy, eventAad('s1', 7, 'payload'), sealed, 'event 7'), '{"hello":"world"}', 'sealed under the real key');
  // Not served from the cache any more: a row naming a KEK this keyring lacks now says so.
  await assert.rejects(
    keyring.dataKey({ owner: 's1', kekId: 'k9', wrapped: 'lk1:AAAA', createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null }),
    /KEK 'k9'/,
  );
});
