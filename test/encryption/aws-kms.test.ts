import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { WrappedKeyError } from '../../src/encryption/kek.js';
import { keyringFromConfig } from '../../src/encryption/keyring-from-config.js';
import { checkKeks, KekMismatchError } from '../../src/encryption/start-checks.js';
import { sqliteTestStore } from '../helpers/stores.js';
import { awsKmsKek } from '../../src/encryption/keks/aws-kms.js';
import { Keyring } from '../../src/encryption/keyring.js';

/**
 * The AWS KMS KEK, against a local HTTP server standing in for KMS (no KMS is reachable from the tests): the requests
 * it builds (operation, key, the data key, the EncryptionContext naming the owner, a SigV4 signature for the region),
 * and how it reads the answers. The stand-in keeps what it "encrypted" and refuses a blob under another context, as
 * KMS does.
 */

interface Seen {
  target: string | undefined;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

const keyId = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const credentials = { accessKeyId: 'AKIDPORTCULLISTEST', secretAccessKey: 'not-a-real-secret' };

describe('AWS KMS KEK (a local stand-in for KMS)', () => {
  const seen: Seen[] = [];
  const blobs = new Map<string, { plaintext: string; context: string }>();
  let server: Server;
  let endpoint: string;

  before(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d));
      req.on('end', () => {
        const body = JSON.parse(text) as Record<string, unknown>;
        const target = req.headers['x-amz-target'] as string | undefined;
        seen.push({ target, headers: req.headers, body });
        const answer = (status: number, json: unknown) => {
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify(json));
        };
        const context = JSON.stringify(body.EncryptionContext ?? {});
        if (target === 'TrentService.Encrypt') {
          const blob = randomBytes(48).toString('base64');
          blobs.set(blob, { plaintext: String(body.Plaintext), context });
          answer(200, { CiphertextBlob: blob, KeyId: keyId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
        } else if (target === 'TrentService.Decrypt') {
          const found = blobs.get(String(body.CiphertextBlob));
          if (found === undefined || found.context !== context) answer(400, { __type: 'InvalidCiphertextException', message: 'bad ciphertext' });
          else answer(200, { Plaintext: found.plaintext, KeyId: keyId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
        } else answer(400, { __type: 'UnknownOperationException', message: String(target) });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('wraps with Encrypt: the key, the data key, the owner as EncryptionContext, signed for kms in the region', async () => {
    const kek = awsKmsKek('k2', { keyId, region: 'eu-west-1', endpoint }, { credentials });
    const dataKey = randomBytes(32);
    const wrapped = await kek.wrap(dataKey, 'session-1');
    assert.match(wrapped, /^kms1:[A-Za-z0-9+/]+=*$/);
    const req = seen.at(-1)!;
    assert.equal(req.target, 'TrentService.Encrypt');
    assert.equal(req.headers['content-type'], 'application/x-amz-json-1.1');
    assert.match(
      String(req.headers.authorization),
      /^AWS4-HMAC-SHA256 Credential=AKIDPORTCULLISTEST\/\d{8}\/eu-west-1\/kms\/aws4_request, SignedHeaders=[^,]*x-amz-target/,
    );
    assert.deepEqual(req.body, { KeyId: keyId, Plaintext: dataKey.toString('base64'), EncryptionContext: { portcullis: 'session-1' } });
    assert.equal(Buffer.from(wrapped.slice('kms1:'.length), 'base64').length, 48, 'the CiphertextBlob, as KMS gave it');
  });

  it('unwraps with Decrypt naming the key and the same context; a blob of another owner is a WrappedKeyError', async () => {
    const kek = awsKmsKek('k2', { keyId, region: 'eu-west-1', endpoint }, { credentials });
    const dataKey = randomBytes(32);
    const wrapped = await kek.wrap(dataKey, 'session-2');
    assert.deepEqual(await kek.unwrap(wrapped, 'session-2'), dataKey);
    const req = seen.at(-1)!;
    assert.equal(req.target, 'TrentService.Decrypt');
    assert.deepEqual(req.body, {
      KeyId: keyId,
      CiphertextBlob: wrapped.slice('kms1:'.length),
      EncryptionContext: { portcullis: 'session-2' },
    });
    await assert.rejects(kek.unwrap(wrapped, 'session-3'), (err: unknown) => {
      assert.ok(err instanceof WrappedKeyError);
      assert.match(err.message, /^the data key of session-3 does not unwrap under KEK 'k2'/);
      return true;
    });
    const before = seen.length;
    await assert.rejects(kek.unwrap('lk1:AAAA', 'session-2'), /it is not an AWS KMS wrapping/);
    assert.equal(seen.length, before, "another provider's wrapping is refused without asking KMS");
  });

  it('in a keyring: a new data key is wrapped once KMS answers; reading it costs one Decrypt, then the cache', async () => {
    const kek = awsKmsKek('kms', { keyId, region: 'eu-west-1', endpoint }, { credentials });
    const writer = new Keyring([kek], kek);
    const made = writer.newDataKey('session-4');
    assert.ok(made.wrapped instanceof Promise, 'a remote KEK wraps asynchronously');
    const row = { owner: 'session-4', kekId: 'kms', wrapped: await made.wrapped, createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null };
    const reader = new Keyring([kek], kek);
    const before = seen.length;
    assert.deepEqual(await reader.dataKey(row), made.key);
    assert.deepEqual(await reader.dataKey(row), made.key);
    assert.equal(seen.length, before + 1);
  });

  it('KMS unreachable or refusing: the error names the KEK and the KMS key, and what KMS said', async () => {
    const kek = awsKmsKek('k2', { keyId: 'alias/missing', region: 'eu-west-1', endpoint }, { credentials });
    // The stand-in answers this operation with an error KMS does not use for bad ciphertexts: not a WrappedKeyError.
    const broken = awsKmsKek('k3', { keyId, region: 'eu-west-1', endpoint: `${endpoint}/` }, { credentials });
    assert.equal(kek.description, `AWS KMS key alias/missing (eu-west-1, endpoint ${endpoint})`);
    server.once('request', (req) => {
      req.headers['x-amz-target'] = 'TrentService.Nothing';
    });
    await assert.rejects(broken.wrap(randomBytes(32), 'session-5'), (err: unknown) => {
      assert.ok(!(err instanceof WrappedKeyError));
      assert.match(
        (err as Error).message,
        new RegExp(`^KEK 'k3' \\(AWS KMS key ${keyId.replace(/[/]/g, '\\/')}\\) could not wrap the data key of session-5: UnknownOperationException`),
      );
      return true;
    });
  });

  it("from the config to the start checks: the SDK's default credentials, a check recorded with Encrypt and checked with Decrypt", async () => {
    // The SDK's credential chain reads the environment first: what a deployment without a role would give it.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDFROMENVIRONMENT';
    process.env.AWS_SECRET_ACCESS_KEY = 'not-a-real-secret-either';
    const config = parseConfig(
      `connections:\n  a:\n    stdio: {command: node}\nrecording:\n  encryption:\n    current: kms\n    keys:\n      - {id: kms, awsKms: {keyId: "${keyId}", endpoint: "${endpoint}"}}\n`,
      'test.yaml',
    );
    const ts = sqliteTestStore();
    const store = await ts.open();
    try {
      const keyring = keyringFromConfig(config.recording.encryption)!;
      const before = seen.length;
      assert.deepEqual(await checkKeks(store, keyring, 1), ['kms']);
      assert.deepEqual(await checkKeks(store, keyringFromConfig(config.recording.encryption)!, 2), []);
      assert.deepEqual(
        seen.slice(before).map((r) => [r.target, r.body.EncryptionContext]),
        [
          ['TrentService.Encrypt', { portcullis: 'portcullis-kek-check' }],
          ['TrentService.Decrypt', { portcullis: 'portcullis-kek-check' }],
        ],
      );
      assert.match(String(seen.at(-1)!.headers.authorization), /Credential=AKIDFROMENVIRONMENT\/\d{8}\/eu-west-1\/kms\//, 'the region from the ARN');
      // The stand-in forgets what it wrapped: as KMS answers for a key that is not the one of the check.
      blobs.clear();
      await assert.rejects(checkKeks(store, keyringFromConfig(config.recording.encryption)!, 3), KekMismatchError);
    } finally {
      await store.close();
      await ts.destroy();
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });
});
