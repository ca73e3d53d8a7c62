import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { runCli } from '../helpers/cli.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/** `portcullis reviews` and `portcullis rules test` as real processes. */

const rules = [
  { name: 'no-long-echo', when: 'tool.name == "echo" && size(arguments.message) > 20', action: 'deny', message: 'keep it short' },
  { name: 'sums-need-review', when: 'tool.name == "get-sum"', action: 'review', approvers: ['leads'] },
];

describe('portcullis reviews', () => {
  let gw: TestGateway;
  const tokens: Record<string, string> = {};
  let client: Client;

  before(async () => {
    gw = await startTestGateway(
      { identity: { dev: { users: { alice: ['eng'], bob: ['leads'] } } }, rules, connections: { demo: { stdio: everythingStdio() } } },
      { reviewPollMs: 100 },
    );
    for (const u of ['alice', 'bob']) tokens[u] = await gw.tokenFor(u);
    client = new Client({ name: 'cli-reviews', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('demo'), { requestInit: { headers: { authorization: `Bearer ${tokens.alice}` } } }));
  });
  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  const cli = (user: string, ...args: string[]) =>
    runCli(['reviews', ...args, '--gateway', gw.url], { env: { PORTCULLIS_TOKEN: tokens[user]!, PORTCULLIS_HOME: '/nonexistent' } });

  async function heldId(): Promise<string> {
    let id = '';
    await waitFor(async () => {
      const r = await cli('bob', 'list', '--status', 'pending', '--json');
      id = r.stdout.trim() === '' ? '' : (JSON.parse(r.stdout.trim().split('\n')[0]!) as { id: string }).id;
      return id !== '';
    }, 'a pending review');
    return id;
  }

  it('lists and shows a held call with its arguments, and approving it completes the call', async () => {
    const call = client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }, undefined, { timeout: 30_000 });
    call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const id = await heldId();
    const list = await cli('bob', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id}\\s+pending\\s+sums-need-review\\s+demo\\s+alice@\\S+\\s+tools/call get-sum\\s+0/1`));
    const show = await cli('bob', 'show', id);
    assert.match(show.stdout, /rule: +sums-need-review/);
    assert.match(show.stdout, /"a": 2,\n\s+"b": 40/);
    const own = await cli('alice', 'approve', id);
    assert.equal(own.code, 1);
    assert.match(own.stderr, /your own call/);
    const approve = await cli('bob', 'approve', id, '--note', 'fine');
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(approve.stdout, new RegExp(`review ${id}: tools/call get-sum .* approved`));
    const result = await call;
    assert.match(JSON.stringify(result.content), /42/);
  });

  it('rejecting needs a reason, and the caller gets it', async () => {
    const call = client.callTool({ name: 'get-sum', arguments: { a: 1, b: 1 } }, undefined, { timeout: 30_000 });
    call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    const id = await heldId();
    const noReason = await cli('bob', 'reject', id);
    assert.notEqual(noReason.code, 0);
    assert.match(noReason.stderr, /--reason/);
    const reject = await cli('bob', 'reject', id, '--reason', 'use a calculator');
    assert.equal(reject.code, 0, reject.stderr);
    await assert.rejects(call, /Rejected by bob.*use a calculator/);
  });
});

describe('portcullis rules test', () => {
  let dir: string;
  let config: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-rules-'));
    config = join(dir, 'portcullis.yaml');
    writeFileSync(config, stringify({ rules, connections: { demo: { stdio: { command: 'node', args: ['server.js'] }, access: { groups: ['*'] } } } }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints each rule tried and the one that decides', async () => {
    const r = await runCli(['rules', 'test', '--config', config, '--tool', 'echo', '--arguments', '{"message":"a message longer than twenty"}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /MATCH  no-long-echo: /);
    assert.match(r.stdout, /decision: deny: "keep it short", by rule 'no-long-echo'/);
    const review = await runCli(['rules', 'test', '--config', config, '--tool', 'get-sum', '--json']);
    const parsed = JSON.parse(review.stdout) as { decision: { action: string; rule: string } };
    assert.deepEqual([parsed.decision.action, parsed.decision.rule], ['review', 'sums-need-review']);
    const none = await runCli(['rules', 'test', '--config', config, '--tool', 'echo', '--arguments', '{"message":"hi"}']);
    assert.match(none.stdout, /no     no-long-echo[\s\S]*no     sums-need-review[\s\S]*decision: allow, by default \(no rule matched\)/);
  });

  describe('through a virtual server', () => {
    let virtualConfig: string;
    before(() => {
      virtualConfig = join(dir, 'virtual.yaml');
      const server = { stdio: { command: 'node', args: ['server.js'] }, access: { groups: ['*'] } };
      writeFileSync(
        virtualConfig,
        stringify({
          rules: [
            ...rules,
            { name: 'toolbox-echo', when: 'virtual.server == "toolbox" && virtual.tool == "say"', action: 'deny', message: 'not through the toolbox' },
          ],
          connections: { demo: server, files: server },
          virtualServers: {
            toolbox: {
              access: { groups: ['*'] },
              members: [
                { connection: 'demo', rename: { echo: 'say' } },
                { connection: 'files', prefix: 'fs_' },
              ],
            },
          },
        }),
      );
    });
    const test = (...args: string[]) => runCli(['rules', 'test', '--config', virtualConfig, ...args]);

    it("judges a name of the virtual server by the rules of the member serving it, which see the virtual server's names", async () => {
      const r = await test('--virtual', 'toolbox', '--tool', 'say', '--arguments', '{"message":"hi"}');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^tools\/call echo on 'demo' through 'toolbox' as say by tester/);
      assert.match(r.stdout, /MATCH  toolbox-echo: /);
      assert.match(r.stdout, /decision: deny: "not through the toolbox", by rule 'toolbox-echo'/);
      // --connection naming the virtual server means the same; the member's own rules still apply.
      const sum = await test('--connection', 'toolbox', '--tool', 'demo__get-sum', '--json');
      assert.equal(sum.code, 0, sum.stderr);
      const parsed = JSON.parse(sum.stdout) as {
        connection: string;
        virtual: unknown;
        request: { params: { name: string } };
        decision: { action: string; rule: string };
      };
      assert.deepEqual(
        [parsed.connection, parsed.request.params.name, parsed.virtual, parsed.decision.action, parsed.decision.rule],
        ['demo', 'get-sum', { server: 'toolbox', tool: 'demo__get-sum', prompt: '' }, 'review', 'sums-need-review'],
      );
    });

    it("takes the member's own name with --connection, and the same call made directly matches no virtual rule", async () => {
      const member = await test('--virtual', 'toolbox', '--connection', 'demo', '--tool', 'echo', '--arguments', '{"message":"hi"}');
      assert.match(member.stdout, /^tools\/call echo on 'demo' through 'toolbox' as say by tester/);
      assert.match(member.stdout, /decision: deny: "not through the toolbox"/);
      const direct = await test('--connection', 'demo', '--tool', 'echo', '--arguments', '{"message":"hi"}');
      assert.match(direct.stdout, /^tools\/call echo on 'demo' by tester/);
      assert.match(direct.stdout, /no     toolbox-echo: [\s\S]*decision: allow/);
    });

    it('names the fix for a name no member exposes, a server that is not virtual, and a member that is not one', async () => {
      const unknown = await test('--virtual', 'toolbox', '--tool', 'demo__echo');
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no member of virtual server 'toolbox' exposes a tool named "demo__echo" \(its prefixes: "demo__", "fs_"\)/);
      const notVirtual = await test('--virtual', 'demo', '--tool', 'echo');
      assert.equal(notVirtual.code, 2);
      assert.match(notVirtual.stderr, /there is no virtual server named "demo"; the config has: toolbox/);
      const notMember = await test('--virtual', 'toolbox', '--connection', 'nobody', '--tool', 'echo');
      assert.equal(notMember.code, 2);
      assert.match(notMember.stderr, /there is no connection named "nobody"/);
      const list = await test('--virtual', 'toolbox', '--method', 'tools/list');
      assert.equal(list.code, 2);
      assert.match(list.stderr, /say which with --connection \(its members: demo, files\)/);
    });
  });

  it('refuses a bad sample clearly', async () => {
    const r = await runCli(['rules', 'test', '--config', config, '--tool', 'echo', '--arguments', '{nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--arguments is not JSON/);
  });
});
