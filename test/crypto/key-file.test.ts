import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadOrCreateEd25519Key, writeNewSecretFile } from '../../src/crypto/key-file.js';
import { loadOrCreateLocalApiKey } from '../../src/crypto/local-api-key.js';

describe('secret files made on first use', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-keys-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('puts a new file in place whole (mode 0600), leaves the first one made, and leaves nothing aside', () => {
    const path = join(dir, 'secret');
    assert.equal(writeNewSecretFile(path, 'first\n'), true);
    assert.equal(writeNewSecretFile(path, 'second\n'), false);
    assert.equal(readFileSync(path, 'utf8'), 'first\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['secret']);
  });

  it('the local API key and the signing key: made once, then read back as they are', () => {
    const key = loadOrCreateLocalApiKey(join(dir, 'data'));
    assert.equal(loadOrCreateLocalApiKey(join(dir, 'data')), key);
    const signing = loadOrCreateEd25519Key(join(dir, 'data', 'signing.pem'), 'the signing key');
    const again = loadOrCreateEd25519Key(join(dir, 'data', 'signing.pem'), 'the signing key');
    assert.equal(again.export({ type: 'pkcs8', format: 'pem' }), signing.export({ type: 'pkcs8', format: 'pem' }));
    assert.deepEqual(readdirSync(join(dir, 'data')).sort(), ['api-key', 'signing.pem']);
  });
});
