import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { type SessionVerification, trustedKeys, verifySession } from '../../src/recording/verify.js';
import { runCli } from '../helpers/cli.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';
import { backends, storeSql, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The session row is not hashed: each of its columns, rewritten behind the gateway's back, makes verify fail (in
 * process, from the CLI and from the API), naming what the row claims; and the list, the API and the console's
 * scoping go by the hashed opening event, so a rewritten owner shows a session to nobody it did not belong to.
 */

const apiToken = 'row-tamper-test-api-token-0123456789';
process.env.ROW_TAMPER_API_TOKEN = apiToken;

/** Each stored column of `sessions`, a rewrite of it, and what verify must say. */
const rewrites: Array<{ column: string; set: string; expect: RegExp }> = [
  { column: 'subject', set: "'mallory'", expect: /row's subject is "mallory", but the recording's opening event says "tester"/ },
  { column: 'issuer', set: "'https://idp.mallory.example'", expect: /row's issuer is "https:\/\/idp\.mallory\.example"/ },
  { column: 'email', set: "'mallory@example.com'", expect: /row's email is "mallory@example\.com"/ },
  { column: 'groups', set: `'["admins","auditors"]'`, expect: /row's groups is \["admins","auditors"\], but the recording's opening event says \["testers"\]/ },
  { column: 'connection', set: "'payroll'", expect: /row's connection is "payroll", but the recording's opening event says "everything"/ },
  { column: 'edge', set: "'sse'", expect: /row's edge is "sse"/ },
  { column: 'remote_address', set: "'203.0.113.9'", expect: /row's remoteAddress is "203\.0\.113\.9"/ },
  { column: 'instance_id', set: "'gw-forged'", expect: /row's instanceId is "gw-forged"/ },
  {
    column: 'client_info',
    set: `'{"name":"forged","version":"6.6.6"}'`,
    expect: /row's clientInfo is \{"name":"forged","version":"6\.6\.6"\}, but the recording's negotiated event \d+ says/,
  },
  { column: 'server_info', set: `'{"name":"forged-server","version":"1"}'`, expect: /row's serverInfo is \{"name":"forged-server"/ },
  { column: 'protocol_version', set: "'1999-01-01'", expect: /row's protocolVersion is "1999-01-01"/ },
  { column: 'opened_at_us', set: 'opened_at_us - 3600000000', expect: /row's openedAtUs is \d+, but the recording's opening event says \d+/ },
  { column: 'closed_at_us', set: 'closed_at_us + 1', expect: /row's closedAtUs is \d+, but the recording's close event \d+ says \d+|signature is not valid/ },
  { column: 'status', set: "'cut-off'", expect: /row's status is "cut-off", but the recording's close event \d+ says "closed"/ },
  { column: 'close_reason', set: "'the user logged out'", expect: /row's closeReason is "the user logged out", but the recording's close event \d+ says/ },
  { column: 'denials', set: 'denials + 5', expect: /row's denials is 5, but the recording's close event \d+ says 0/ },
  { column: 'redactions', set: 'redactions + 7', expect: /row's redactions is 7, but the recording's close event \d+ says 0/ },
  { column: 'event_count', set: 'event_count - 1', expect: /events follow the seal/ },
  { column: 'last_hash', set: `'${'0'.repeat(64)}'`, expect: /the seal's last hash does not match/ },
  { column: 'seal', set: "'AAAA'", expect: /signature is not valid/ },
  { column: 'seal_key_id', set: "'forged-key'", expect: /sealed with key forged-key, which is not trusted here/ },
];

function problems(r: SessionVerification): string {
  return r.problems.map((p) => p.message).join('\n');
}

for (const backend of backends) {
  describe(`a rewritten session row is caught (${backend.name} store)`, () => {
    let ts: TestStore;
    let gw: TestGateway;
    let store: Store;
    let dir: string;
    let configFile: string;
    let trusted: Map<string, string>;
    let sql: (text: string, ...params: unknown[]) => Promise<void>;
    let victim: string;

    const api = async (path: string, token = apiToken) => {
      const res = await fetch(new URL(path, gw.url), { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    before(async () => {
      ts = backend.make();
      dir = mkdtempSync(join(tmpdir(), 'portcullis-row-tamper-'));
      const config = {
        dataDir: join(dir, 'data'),
        store: ts.url,
        api: { token: '${env:ROW_TAMPER_API_TOKEN}' },
        connections: { everything: { stdio: everythingStdio() } },
      };
      gw = await startTestGateway(config);
      configFile = join(dir, 'gateway.yaml');
      writeFileSync(configFile, stringify({ ...config, listen: '127.0.0.1:1', identity: { dev: { users: { tester: ['testers'] } } } }));
      const url = gw.mcp('everything');
      victim = await rawInitialize(url, gw.auth);
      const headers = { ...mcpHeaders, ...gw.auth, 'mcp-session-id': victim, 'mcp-protocol-version': '2025-11-25' };
      await (await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) })).text();
      await fetch(url, { method: 'DELETE', headers: { ...gw.auth, 'mcp-session-id': victim } });
      store = await openStore(ts.url, { reader: true });
      await waitFor(async () => (await store.getSession(victim))?.status === 'closed', 'the session to be sealed');
      const key = gw.gateway.recorder!.key;
      trusted = await trustedKeys([{ keyId: key.keyId, publicKeyPem: key.publicKeyPem }]);
      sql = storeSql(ts, backend.name);
      await sql('CREATE TABLE sessions_untouched AS SELECT * FROM sessions WHERE id = ?', victim);
    });

    after(async () => {
      await gw?.stop();
      await store?.close();
      await ts?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    it('the untouched session verifies', async () => {
      const r = await verifySession(store, victim, trusted);
      assert.equal(r.status, 'verified', problems(r));
    });

    for (const { column, set, expect } of rewrites) {
      it(`UPDATE sessions SET ${column}: verify fails (in process, CLI and API) and names it`, async () => {
        await sql(`UPDATE sessions SET ${column} = ${set} WHERE id = ?`, victim);
        try {
          const r = await verifySession(store, victim, trusted);
          assert.equal(r.status, 'failed', `verify passed a rewritten ${column}`);
          assert.match(problems(r), expect);

          const cli = await runCli(['sessions', 'verify', victim, '--config', configFile], { env: { ROW_TAMPER_API_TOKEN: apiToken } });
          assert.equal(cli.code, 1, cli.stdout + cli.stderr);
          assert.match(cli.stdout, expect);

          const viaApi = await api(`/api/sessions/${victim}/verify`);
          assert.equal(viaApi.status, 200);
          assert.equal(viaApi.body.status, 'failed');
          assert.match((viaApi.body.problems as Array<{ message: string }>).map((p) => p.message).join('\n'), expect);
        } finally {
          await sql(`UPDATE sessions SET ${column} = (SELECT ${column} FROM sessions_untouched) WHERE id = ?`, victim);
        }
        const restored = await verifySession(store, victim, trusted);
        assert.equal(restored.status, 'verified', problems(restored));
      });
    }

    it('UPDATE sessions SET id: neither the forged id nor the real one verifies', async () => {
      await sql("UPDATE sessions SET id = 'forged-session' WHERE id = ?", victim);
      try {
        assert.equal((await verifySession(store, 'forged-session', trusted)).status, 'failed');
        assert.equal((await verifySession(store, victim, trusted)).status, 'failed');
      } finally {
        await sql("UPDATE sessions SET id = ? WHERE id = 'forged-session'", victim);
      }
    });

    it('a rewritten owner: the list and the API show the recorded owner, marked, and scoping follows the recording', async () => {
      await sql("UPDATE sessions SET subject = 'other', email = 'other@example.com' WHERE id = ?", victim);
      try {
        // An auditor (the API token) sees the session as recorded, with what the row claims.
        const all = await api('/api/sessions');
        const seen = (all.body.sessions as Array<{ id: string; subject: string; tampered: Array<{ column: string; stored: unknown }> }>).find(
          (s) => s.id === victim,
        )!;
        assert.equal(seen.subject, 'tester', 'the owner is the recording’s');
        assert.deepEqual(
          seen.tampered.map((m) => [m.column, m.stored]),
          [
            ['subject', 'other'],
            ['email', 'other@example.com'],
          ],
        );
        const one = await api(`/api/sessions/${victim}`);
        assert.equal((one.body.session as { subject: string }).subject, 'tester');

        // The user the row now names sees nothing of it…
        const other = await gw.tokenFor('other');
        const asOther = await api('/api/sessions', other);
        assert.equal(asOther.status, 200);
        assert.deepEqual(
          (asOther.body.sessions as Array<{ id: string }>).map((s) => s.id),
          [],
          'the row’s new owner does not see it',
        );
        assert.equal((await api(`/api/sessions/${victim}`, other)).status, 404);
        assert.equal((await api(`/api/sessions/${victim}/events`, other)).status, 404);
        assert.equal((await api(`/api/sessions/${victim}/export`, other)).status, 404);
        // …and its owner still reaches it by id.
        const own = await api(`/api/sessions/${victim}`, gw.token);
        assert.equal(own.status, 200);
        assert.equal((own.body.session as { subject: string }).subject, 'tester');

        const list = await runCli(['sessions', 'list', '--config', configFile], { env: { ROW_TAMPER_API_TOKEN: apiToken } });
        assert.equal(list.code, 0, list.stderr);
        const line = list.stdout.split('\n').find((l) => l.startsWith(victim))!;
        assert.match(line, / tester +everything +legacy +closed ALTERED /);
        assert.match(list.stderr, new RegExp(`${victim} \\(subject, email\\)`));

        const show = await runCli(['sessions', 'show', victim, '--config', configFile], { env: { ROW_TAMPER_API_TOKEN: apiToken } });
        assert.match(show.stdout, /^User +tester/m);
        assert.match(show.stdout, /^ALTERED +the session row's subject is "other"/m);
      } finally {
        await sql(
          'UPDATE sessions SET subject = (SELECT subject FROM sessions_untouched), email = (SELECT email FROM sessions_untouched) WHERE id = ?',
          victim,
        );
      }
    });

    it('a forged row with no recording belongs to nobody a scope names', async () => {
      await sql(
        "INSERT INTO sessions (id, instance_id, connection, subject, issuer, email, groups, edge, remote_address, opened_at_us, status, denials, redactions) SELECT 'forged-row', instance_id, connection, 'other', issuer, email, groups, edge, remote_address, opened_at_us + 1, 'open', 0, 0 FROM sessions_untouched",
      );
      try {
        const other = await gw.tokenFor('other');
        assert.deepEqual(((await api('/api/sessions', other)).body.sessions as unknown[]).length, 0);
        assert.equal((await api('/api/sessions/forged-row', other)).status, 404);
        const seen = ((await api('/api/sessions')).body.sessions as Array<{ id: string; tampered: Array<{ column: string }> }>).find(
          (s) => s.id === 'forged-row',
        )!;
        assert.deepEqual(
          seen.tampered.map((m) => m.column),
          ['opening'],
        );
      } finally {
        await sql("DELETE FROM sessions WHERE id = 'forged-row'");
      }
    });
  });
}
