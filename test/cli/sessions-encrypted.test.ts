import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { localKek } from '../../src/encryption/keks/local.js';
import { Keyring } from '../../src/encryption/keyring.js';
import type { SigningKey } from '../../src/recording/keys.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { testKeyring, testSigner, eraseWrittenSession, writeRecordedSession } from '../helpers/encryption.js';
import { everythingStdio } from '../helpers/everything.js';

/**
 * `portcullis sessions …` on encrypted recordings with a config that has no KEK for them: show, replay and export
 * refuse with exit code 1 and say what to do (no stack trace), an erased session says who erased it, when and why;
 * list shows the sessions' rows, marked; verify needs no key and passes, reporting erased sessions as erased.
 */

/**
 * A SQLite store whose recordings `write` makes under k1 (a keyring of its own; the signer's key it may register), and
 * a config for it without that KEK: the directory holding both (removed again if `write` fails) and the config file.
 */
async function storeWithoutKek(
  prefix: string,
  write: (store: Store, keyring: Keyring, signer: SigningKey) => Promise<void>,
): Promise<{ dir: string; configFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    mkdirSync(join(dir, 'data'));
    const store = `sqlite:${join(dir, 'data', 'recordings.db')}`;
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(
      configFile,
      stringify({ dataDir: join(dir, 'data'), store, listen: '127.0.0.1:1', connections: { everything: { stdio: everythingStdio() } } }),
    );
    const s = await openStore(store);
    try {
      await write(s, testKeyring(['k1']), testSigner().key);
    } finally {
      await s.close();
    }
    return { dir, configFile };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

describe('portcullis sessions, encrypted recordings without the KEK', () => {
  let dir: string;
  let configFile: string;
  const ids = { encrypted: '', erased: '', plain: '' };
  const erasedAtUs = 1_796_000_000_000_000;

  before(async () => {
    ({ dir, configFile } = await storeWithoutKek('portcullis-sessions-enc-', async (s, keyring, signer) => {
      ids.encrypted = (await writeRecordedSession(s, { keyring, signer })).session.id;
      const erased = (await writeRecordedSession(s, { keyring, signer, subject: 'bob' })).session;
      ids.erased = erased.id;
      ids.plain = (await writeRecordedSession(s, { signer, subject: 'carol' })).session.id;
      await s.registerKey({ keyId: signer.keyId, publicKey: signer.publicKeyPem, instanceId: 'gw-enc', createdAtUs: 1 });
      await eraseWrittenSession(s, erased, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #7', erasedAtUs });
    }));
  });

  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => runCli([...args, '--config', configFile]);
  const noKek = /encrypted under KEK 'k1', which this config does not have: add it to recording\.encryption\.keys to read it \(verify needs no key\)/;
  const erased = new RegExp(
    `was erased \\(crypto-shredded\\) at ${new Date(erasedAtUs / 1000).toISOString().replaceAll('.', '\\.')} by root \\(https://idp\\.example\\.com\\): privacy request #7; its payloads can never be read`,
  );

  it('show, replay and export refuse with exit code 1, naming the KEK and the config key, without a stack trace', async () => {
    const out = join(dir, 'export.jsonl');
    for (const args of [
      ['sessions', 'show', ids.encrypted],
      ['sessions', 'show', ids.encrypted, '--json'],
      ['sessions', 'replay', ids.encrypted, '--speed', '100'],
      ['sessions', 'export', ids.encrypted, '-o', out],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, noKek, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.doesNotMatch(r.stdout, /marker-secret/);
    }
    assert.ok(!existsSync(out), 'no partial export file');
  });

  it('an erased session says who erased it, when and why', async () => {
    const r = await cli('sessions', 'show', ids.erased);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, erased);
  });

  it('a plain session of the same store still reads', async () => {
    const r = await cli('sessions', 'show', ids.plain);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /marker-secret-1/);
  });

  it("list shows every session's row, the unreadable and the erased marked", async () => {
    const r = await cli('sessions', 'list');
    assert.equal(r.code, 0, r.stderr);
    const line = (id: string) => r.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
    assert.match(line(ids.encrypted), /alice +everything +legacy +closed UNREADABLE +5 /);
    assert.match(line(ids.erased), /bob +everything +legacy +closed ERASED +5 /);
    assert.match(line(ids.plain), /carol +everything +legacy +closed +5 /);
    assert.match(r.stderr, /1 session \(marked UNREADABLE\) cannot be read with this config/);
    assert.match(r.stderr, noKek);
  });

  it('verify needs no key: it passes, says which checks it skipped, and reports the erased session as erased', async () => {
    const one = await cli('sessions', 'verify', ids.encrypted, '--trust-store-keys');
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.match(
      one.stdout,
      new RegExp(`^${ids.encrypted} +verified +5 events; .*encrypted under KEK 'k1', which this config does not have: the checks .* were skipped`),
    );
    const gone = await cli('sessions', 'verify', ids.erased, '--trust-store-keys');
    assert.equal(gone.code, 0, gone.stdout + gone.stderr);
    assert.match(
      gone.stdout,
      new RegExp(`^${ids.erased} +erased +5 events; erased \\(crypto-shredded\\) .* by root \\(https://idp\\.example\\.com\\): privacy request #7`),
    );
    const all = await cli('sessions', 'verify', '--all', '--trust-store-keys');
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.match(all.stdout, /3 sessions: 2 verified, 1 erased \(verified, unreadable for good\), 0 not sealed yet \(live\), 0 FAILED; 3 ledgers: intact/);
  });
});

describe('portcullis sessions show <group>, encrypted recordings without the KEK', () => {
  let dir: string;
  let configFile: string;
  const ids = { encrypted: '', erased: '' };
  const erasedAtUs = 1_796_000_000_000_000;

  before(async () => {
    ({ dir, configFile } = await storeWithoutKek('portcullis-groups-enc-', async (s, keyring, signer) => {
      ids.encrypted = (await writeRecordedSession(s, { keyring, signer, edge: 'modern' })).session.id;
      const erased = (await writeRecordedSession(s, { keyring, signer, subject: 'bob', edge: 'modern' })).session;
      ids.erased = erased.id;
      await eraseWrittenSession(s, erased, { signer, by: 'root (https://idp.example.com)', reason: 'privacy request #8', erasedAtUs });
      await s.registerKey({ keyId: signer.keyId, publicKey: signer.publicKeyPem, instanceId: 'gw-enc', createdAtUs: 1 });
    }));
  });

  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => runCli([...args, '--config', configFile]);

  it('says why the group cannot be shown: the KEK its session is encrypted under, or who erased it, when and why', async () => {
    // The group of the session's first request (open, negotiated, then the request: seq 2).
    const encrypted = await cli('sessions', 'show', `${ids.encrypted}.2`);
    assert.equal(encrypted.code, 1, encrypted.stderr);
    assert.match(
      encrypted.stderr,
      new RegExp(
        `^portcullis: group "${ids.encrypted}\\.2" cannot be shown: the recording of ${ids.encrypted} is encrypted under KEK 'k1', which this config does not have: add it to recording\\.encryption\\.keys`,
      ),
    );
    const erased = await cli('sessions', 'show', `${ids.erased}.2`);
    assert.equal(erased.code, 1, erased.stderr);
    assert.match(
      erased.stderr,
      new RegExp(
        `cannot be shown: the recording of ${ids.erased} was erased \\(crypto-shredded\\) at ${new Date(erasedAtUs / 1000).toISOString().replaceAll('.', '\\.')} by root \\(https://idp\\.example\\.com\\): privacy request #8`,
      ),
    );
    for (const r of [encrypted, erased]) {
      assert.doesNotMatch(r.stderr, /no group/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('export says why as show does; verify, which needs no key, verifies the whole session the group is part of', async () => {
    const exported = await cli('sessions', 'export', `${ids.encrypted}.2`);
    assert.equal(exported.code, 1, exported.stderr);
    assert.match(
      exported.stderr,
      new RegExp(`^portcullis: group "${ids.encrypted}\\.2" cannot be exported: the recording of ${ids.encrypted} is encrypted under KEK 'k1'`),
    );
    for (const [id, status] of [
      [ids.encrypted, 'verified'],
      [ids.erased, 'erased'],
    ] as const) {
      const r = await cli('sessions', 'verify', `${id}.2`, '--trust-store-keys');
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      const [head, line] = r.stdout.split('\n');
      assert.match(
        head!,
        new RegExp(
          `^group ${id}\\.2: its session's payloads cannot be read here \\(.*\\), so the group cannot be told apart; its whole session ${id} is verified, which covers it$`,
        ),
      );
      assert.match(line!, new RegExp(`^${id}  ${status}`));
    }
  });

  it('show, export and verify of a group id that names no session say alike that there is none, and where groups are listed', async () => {
    for (const verb of ['show', 'export', 'verify']) {
      const r = await cli('sessions', verb, 'no-such-session.2', ...(verb === 'verify' ? ['--trust-store-keys'] : []));
      assert.equal(r.code, 1, `${verb}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^portcullis: no group "no-such-session\.2" in .*; `portcullis sessions list --groups` shows them\n$/, verb);
    }
  });
});

describe('portcullis sessions, encrypted recordings with the KEK in the config', () => {
  let dir: string;
  let configFile: string;
  let id = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-sessions-kek-'));
    mkdirSync(join(dir, 'data'));
    const store = `sqlite:${join(dir, 'data', 'recordings.db')}`;
    const material = randomBytes(32);
    const kekFile = join(dir, 'kek-1');
    writeFileSync(kekFile, material.toString('base64'), { mode: 0o600 });
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(
      configFile,
      stringify({
        dataDir: join(dir, 'data'),
        store,
        listen: '127.0.0.1:1',
        recording: { encryption: { current: 'k1', keys: [{ id: 'k1', local: `\${file:${kekFile}}` }] } },
        connections: { everything: { stdio: everythingStdio() } },
      }),
    );
    const s = await openStore(store);
    try {
      const kek = localKek('k1', material);
      const { key: signer } = testSigner();
      id = (await writeRecordedSession(s, { keyring: new Keyring([kek], kek), signer })).session.id;
      await s.registerKey({ keyId: signer.keyId, publicKey: signer.publicKeyPem, instanceId: 'gw-enc', createdAtUs: 1 });
    } finally {
      await s.close();
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => runCli([...args, '--config', configFile]);

  it('show, export and verify read it: the payloads come back as recorded', async () => {
    const shown = await cli('sessions', 'show', id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /marker-secret-1/);
    const out = join(dir, 'export.jsonl');
    const exported = await cli('sessions', 'export', id, '-o', out);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(readFileSync(out, 'utf8'), /marker-secret-1/);
    const verified = await cli('sessions', 'verify', id, '--trust-store-keys');
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`^${id} +verified `));
    assert.doesNotMatch(verified.stdout, /skipped/, 'with the key, the checks against the payloads are made');
  });
});
