import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { eventAad, isSealed, openText, sealText } from '../../src/encryption/envelope.js';
import { Keyring } from '../../src/encryption/keyring.js';
import { localKek } from '../../src/encryption/keks/local.js';

/**
 * The envelope keeps an OpenSSL key object per data key and draws nonces from a pool (the recorder's hot path): two
 * values sealed alike still differ, and a key the keyring forgets (erased) opens nothing afterwards, even through
 * the very Buffer it was.
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

it('a data key the keyring forgets opens nothing after, even through the Buffer that held it', async () => {
  const kek = localKek('k1', randomBytes(32));
  const keyring = new Keyring([kek], kek);
  const { key } = keyring.newDataKey('s1');
  const sealed = sealText(key, eventAad('s1', 0, 'payload'), '{"hello":"world"}');
  assert.equal(openText(key, eventAad('s1', 0, 'payload'), sealed, 'event 0'), '{"hello":"world"}');
  keyring.forget('s1');
  assert.throws(() => openText(key, eventAad('s1', 0, 'payload'), sealed, 'event 0'), /does not decrypt/);
});
