import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { SecretSources } from '../../src/core/secrets.js';
import { keyringFromConfig } from '../../src/encryption/keyring-from-config.js';

/** recording.encryption as a config file gives it: what is accepted, and the errors, each naming the key and the fix. */

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('hex');
const sources: SecretSources = {
  env: { KEK_2: k2, SHORT: randomBytes(16).toString('base64') },
  readFile: (path) => {
    if (path === '/etc/portcullis/kek-1') return `${k1}\n`;
    throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  },
};

function parse(encryption: string) {
  return parseConfig(`connections:\n  a:\n    stdio: {command: node}\nrecording:\n  encryption:\n${encryption}`, 'test.yaml', sources);
}

function problems(encryption: string): string[] {
  try {
    parse(encryption);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected the config to be refused');
}

describe('recording.encryption', () => {
  it('absent: recordings are plain, no keyring', () => {
    const config = parseConfig('connections:\n  a:\n    stdio: {command: node}\n', 'test.yaml', sources);
    assert.equal(config.recording.encryption, undefined);
    assert.equal(keyringFromConfig(config.recording.encryption), undefined);
  });

  it('local and AWS KMS keys: the keyring has both, the current one wraps, the local one by reference only', async () => {
    const config = parse(
      '    current: k2\n    keys:\n' +
        '      - {id: k1, local: "${file:/etc/portcullis/kek-1}"}\n' +
        '      - {id: k2, local: "${env:KEK_2}"}\n' +
        '      - {id: kms, awsKms: {keyId: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}\n',
    );
    const keyring = keyringFromConfig(config.recording.encryption)!;
    assert.deepEqual(keyring.ids, ['k1', 'k2', 'kms']);
    assert.equal(keyring.current.id, 'k2');
    assert.equal(keyring.kek('kms')!.provider, 'aws-kms');
    assert.match(keyring.kek('kms')!.description, /eu-west-1/, 'the region comes from the ARN');
    // The config never shows the key itself: only the reference.
    assert.doesNotMatch(JSON.stringify(config.recording.encryption), new RegExp(k1.slice(0, 20).replace(/[+/]/g, '.')));
    // What k1 wraps, a keyring built from the same file unwraps.
    const { key, wrapped } = keyring.newDataKey('s1');
    const again = keyringFromConfig(parse('    current: k2\n    keys:\n      - {id: k2, local: "${env:KEK_2}"}\n').recording.encryption)!;
    assert.deepEqual(
      await again.dataKey({ owner: 's1', kekId: 'k2', wrapped: await wrapped, createdAtUs: 1, erasedAtUs: null, erasedBy: null, eraseReason: null }),
      key,
    );
  });

  it('an unknown current key: names the ids there are', () => {
    assert.deepEqual(problems('    current: k3\n    keys:\n      - {id: k1, local: "${file:/etc/portcullis/kek-1}"}\n'), [
      "recording.encryption.current: 'k3' is not the id of any of recording.encryption.keys (k1): name the one that wraps new data keys",
    ]);
  });

  it('duplicate ids: names both entries', () => {
    assert.deepEqual(
      problems('    current: k1\n    keys:\n      - {id: k1, local: "${file:/etc/portcullis/kek-1}"}\n      - {id: k1, local: "${env:KEK_2}"}\n'),
      ["recording.encryption.keys.1.id: duplicate KEK id 'k1' (keys.0 has it too): each key needs its own id, which is stored beside the data keys it wraps"],
    );
  });

  it('a literal local key is refused, and the key is not shown', () => {
    const found = problems(`    current: k1\n    keys:\n      - {id: k1, local: "${k1}"}\n`);
    assert.equal(found.length, 1);
    assert.match(
      found[0]!,
      /^recording\.encryption\.keys\.0\.local: a local KEK must be a reference such as \$\{file:\/etc\/portcullis\/kek-1\} or \$\{env:NAME\}, not a literal/,
    );
    assert.ok(!found[0]!.includes(k1));
  });

  it('a local key of the wrong length, or a reference that does not resolve', () => {
    assert.deepEqual(problems('    current: k1\n    keys:\n      - {id: k1, local: "${env:SHORT}"}\n'), [
      'recording.encryption.keys.0.local: expected 32 random bytes as base64 (44 characters) or hex (64 digits); make one with: openssl rand -base64 32',
    ]);
    assert.deepEqual(problems('    current: k1\n    keys:\n      - {id: k1, local: "${file:/nowhere/kek}"}\n'), [
      'recording.encryption.keys.0.local: file /nowhere/kek cannot be read (ENOENT) (referenced as ${file:/nowhere/kek})',
    ]);
  });

  it('a key with no provider, or two; an AWS KMS key whose region is not known; an unknown key', () => {
    assert.deepEqual(problems('    current: k1\n    keys:\n      - {id: k1}\n'), [
      "recording.encryption.keys.0: KEK 'k1' names no provider: give one of local, awsKms (local: ${file:PATH} of 32 random bytes, or awsKms: { keyId, region })",
    ]);
    assert.deepEqual(problems('    current: k1\n    keys:\n      - {id: k1, local: "${env:KEK_2}", awsKms: {keyId: alias/pc, region: eu-west-1}}\n'), [
      "recording.encryption.keys.0: KEK 'k1' names local and awsKms: give exactly one provider per key (a key with another provider is another entry, with its own id)",
    ]);
    assert.deepEqual(problems('    current: k1\n    keys:\n      - {id: k1, awsKms: {keyId: alias/portcullis}}\n'), [
      "recording.encryption.keys.0.awsKms.region: expected the key's AWS region (eu-west-1): keyId is not an ARN, so it does not say",
    ]);
    const unknown = problems('    current: k1\n    keys:\n      - {id: k1, vault: x}\n');
    assert.ok(unknown.includes('recording.encryption.keys.0.vault: unknown key; expected one of: id, local, awsKms'), unknown.join('\n'));
    assert.deepEqual(problems('    current: k1\n    keys: []\n'), [
      'recording.encryption.keys: expected at least one KEK (an id and local: or awsKms:), found a list',
    ]);
  });
});
