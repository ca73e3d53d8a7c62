import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Keyring } from '../../src/encryption/keyring.js';
import { checkKeks } from '../../src/encryption/start-checks.js';
import { openStore } from '../../src/store/open.js';
import { runCli } from '../helpers/cli.js';
import { seedDataKeys, writeLocalKek } from '../helpers/encryption.js';

/**
 * `portcullis keys list` and `keys rotate` as real processes on a SQLite store holding data keys under k1, with a
 * config that has made k2 current: what they print, what rotate changes, and what stops it.
 */

describe('portcullis keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-keys-'));
  const url = `sqlite:${join(dir, 'store.db')}`;
  const k1 = writeLocalKek(join(dir, 'k1'), 'k1').kek;
  writeLocalKek(join(dir, 'k2'), 'k2');
  writeLocalKek(join(dir, 'k2-other'), 'k2');
  const config = (name: string, current: string, keys: Record<string, string>) => {
    const path = join(dir, `${name}.yaml`);
    const list = Object.entries(keys)
      .map(([id, file]) => `      - {id: ${id}, local: "\${file:${join(dir, file)}}"}\n`)
      .join('');
    writeFileSync(
      path,
      `store: ${url}\ndataDir: ${dir}\ncluster: {goneAfter: 10m}\nconnections:\n  a:\n    stdio: {command: node}\nrecording:\n  encryption:\n    current: ${current}\n    keys:\n${list}`,
    );
    return path;
  };
  const keys = (...args: string[]) => runCli(['keys', ...args], { timeoutMs: 60_000 });
  const rotated = config('rotated', 'k2', { k1: 'k1', k2: 'k2' });

  before(async () => {
    const store = await openStore(url);
    try {
      const keyring = new Keyring([k1], k1);
      await checkKeks(store, keyring, 1);
      await seedDataKeys(
        store,
        keyring,
        Array.from({ length: 30 }, (_, i) => `s-${i}`),
      );
    } finally {
      await store.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('list: each KEK, the current one, its data keys and whether the store knows it as this key', async () => {
    const run = await keys('list', '--config', rotated);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    assert.match(lines[0]!, /^KEK\s+PROVIDER\s+CURRENT\s+DATA KEYS\s+STORE\s+ABOUT$/);
    assert.match(lines[1]!, /^k1\s+local\s+30\s+ok\s+local key 'k1'$/);
    assert.match(lines[2]!, /^k2\s+local\s+yes\s+0\s+new \(recorded when a gateway starts with it\)\s+local key 'k2'$/);
    const json = await keys('list', '--config', rotated, '--json');
    assert.deepEqual(JSON.parse(json.stdout.split('\n')[0]!), {
      id: 'k1',
      provider: 'local',
      current: false,
      dataKeys: 30,
      store: 'ok',
      about: "local key 'k1'",
    });
  });

  it('rotate: every data key ends under the current KEK; running it again is a no-op', async () => {
    const run = await keys('rotate', '--config', rotated, '--batch', '7');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      "rotating data keys to KEK 'k2' (local key 'k2')\n30 data keys re-wrapped under 'k2' (from k1: 30), in 2 passes\nevery data key is under 'k2'\n",
    );
    const list = await keys('list', '--config', rotated);
    assert.match(list.stdout, /^k1\s+local\s+0\s+ok/m);
    assert.match(list.stdout, /^k2\s+local\s+yes\s+30\s+ok/m, "rotate recorded the new KEK's check");
    const again = await keys('rotate', '--config', rotated);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^0 data keys re-wrapped under 'k2', in 1 pass$/m);
  });

  // A replica is live while its heartbeat is younger than cluster.goneAfter: 10 minutes in these configs, so one
  // claimed by the test stays live however slowly the commands run.
  it('refuses a KEK the store knows as other key material, a live replica without the current KEK, and no encryption at all', async () => {
    const impostor = await keys('rotate', '--config', config('impostor', 'k2', { k1: 'k1', k2: 'k2-other' }));
    assert.equal(impostor.code, 1);
    assert.match(impostor.stderr, /^portcullis: KEK 'k2' is not the key this store knows by that name/);
    assert.equal(impostor.stdout, '');

    const store = await openStore(url);
    try {
      assert.ok(await store.claimMember({ id: 'gw-old', address: 'http://10.0.0.9:8080', startedAtUs: 1, boot: 'h/1/x' }, undefined));
      assert.ok(await store.publishMemberKeks('gw-old', 'h/1/x', { current: 'k1', ids: ['k1'] }));
    } finally {
      await store.close();
    }
    const blocked = await keys('rotate', '--config', rotated);
    assert.equal(blocked.code, 1);
    assert.match(
      blocked.stderr,
      /^portcullis: not rotating to KEK 'k2': replica 'gw-old' does not have KEK 'k2' \(it has k1\): it could not read any recording once rotated; add 'k2' to its recording\.encryption\.keys and restart it first\n$/,
    );
    const list = await keys('list', '--config', rotated);
    assert.match(list.stdout, /^replica gw-old: current KEK k1 \(has k1\)$/m);

    const plain = join(dir, 'plain.yaml');
    writeFileSync(plain, `store: ${url}\ndataDir: ${dir}\ncluster: {goneAfter: 10m}\nconnections:\n  a:\n    stdio: {command: node}\n`);
    const none = await keys('rotate', '--config', plain);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /recording\.encryption is not configured: there is no current KEK to rotate to/);
  });
});
