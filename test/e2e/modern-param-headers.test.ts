import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listedToolsServerPath } from '../fixtures/listed-tools-server.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, modernBody, modernHeaders, rawRequest } from '../helpers/modern.js';
import { allEvents, receivedTexts } from '../helpers/recorded.js';

/**
 * `Mcp-Param-*` headers checked against the tool definition the gateway trusts: the pinned one when the connection
 * pins tools, else the one it last listed. A header that disagrees with the argument, is missing, or is undecodable is
 * refused with -32020; the official v2 client, which mirrors the declared arguments itself, gets through.
 */

const tools = [
  {
    name: 'query',
    description: 'Runs a query in a region',
    inputSchema: {
      type: 'object',
      properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' },
        limit: { type: 'integer', 'x-mcp-header': 'Limit' },
        q: { type: 'string' },
      },
      required: ['region', 'q'],
    },
  },
  {
    // Invalid: x-mcp-header on a number (the spec allows string, integer and boolean only).
    name: 'weigh',
    description: 'Weighs something',
    inputSchema: { type: 'object', properties: { kg: { type: 'number', 'x-mcp-header': 'Kg' }, what: { type: 'string' } } },
  },
];

describe('Mcp-Param-* headers', () => {
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'param-headers-'));
    const file = join(dir, 'tools.json');
    writeFileSync(file, JSON.stringify(tools));
    const stdio = { command: process.execPath, args: [listedToolsServerPath, file] };
    gw = await startTestGateway({ connections: { pinned: { stdio }, unpinned: { stdio, tools: { pin: false } } } });
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (connection: string, args: Record<string, unknown>, extra: Array<[string, string]>) =>
    rawRequest(
      gw.mcp(connection),
      'POST',
      [...modernHeaders('tools/call', 'query'), ...extra, ['authorization', gw.auth.authorization!]],
      JSON.stringify(modernBody('tools/call', { name: 'query', arguments: args })),
    );

  for (const connection of ['pinned', 'unpinned']) {
    describe(`on a ${connection} connection`, () => {
      before(async () => {
        // Listing pins the definitions (first use) and shows them to modern clients.
        const listed = await rawRequest(
          gw.mcp(connection),
          'POST',
          [...modernHeaders('tools/list'), ['authorization', gw.auth.authorization!]],
          JSON.stringify(modernBody('tools/list')),
        );
        assert.equal(listed.status, 200, listed.body);
      });

      it('lets a call through whose headers match its arguments', async () => {
        const ok = await call(connection, { region: 'us-west1', limit: 42, q: 'select' }, [
          ['mcp-param-region', 'us-west1'],
          ['mcp-param-limit', '42.0'],
        ]);
        assert.equal(ok.status, 200, ok.body);
        assert.match(ok.body, /query ran/);
        const encoded = await call(connection, { region: 'zone ü', q: 'x' }, [['mcp-param-region', `=?base64?${Buffer.from('zone ü').toString('base64')}?=`]]);
        assert.equal(encoded.status, 200, encoded.body);
      });

      it('refuses a header that disagrees with the argument', async () => {
        const bad = await call(connection, { region: 'us-west1', q: 'select' }, [['mcp-param-region', 'eu-north1']]);
        assert.equal(bad.status, 400);
        assert.equal(bad.json?.error?.code, -32020);
        const badNumber = await call(connection, { region: 'us-west1', limit: 42, q: 'select' }, [
          ['mcp-param-region', 'us-west1'],
          ['mcp-param-limit', '43'],
        ]);
        assert.equal(badNumber.json?.error?.code, -32020);
      });

      it('repeats neither the argument nor the header value in the answer or the log (an argument may be a secret)', async () => {
        const bad = await call(connection, { region: 'arg-secret-7f3a', q: 'select' }, [['mcp-param-region', 'header-secret-9b1c']]);
        assert.equal(bad.json?.error?.code, -32020);
        assert.match(bad.json!.error!.message, /region.*Mcp-Param-Region/);
        for (const secret of ['arg-secret-7f3a', 'header-secret-9b1c']) {
          assert.ok(!bad.body.includes(secret), `${secret} is not in the answer`);
          assert.ok(!gw.log.text.includes(secret), `${secret} is not in the log`);
        }
      });

      it('refuses a missing or undecodable header', async () => {
        const missing = await call(connection, { region: 'us-west1', q: 'select' }, []);
        assert.equal(missing.status, 400);
        assert.equal(missing.json?.error?.code, -32020);
        const undecodable = await call(connection, { region: 'us-west1', q: 'select' }, [['mcp-param-region', '=?base64?%%%?=']]);
        assert.equal(undecodable.json?.error?.code, -32020);
      });

      it('leaves a tool with an invalid x-mcp-header out of a modern tools/list, and refuses calls to it', async () => {
        const listed = await rawRequest(
          gw.mcp(connection),
          'POST',
          [...modernHeaders('tools/list'), ['authorization', gw.auth.authorization!]],
          JSON.stringify(modernBody('tools/list')),
        );
        const names = ((listed.json?.result ?? { tools: [] }) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
        assert.deepEqual(names, ['query']);
        assert.match(gw.log.text, /tool left out of tools\/list: its x-mcp-header declaration is invalid/);
        const called = await rawRequest(
          gw.mcp(connection),
          'POST',
          [...modernHeaders('tools/call', 'weigh'), ['mcp-param-kg', '3.5'], ['authorization', gw.auth.authorization!]],
          JSON.stringify(modernBody('tools/call', { name: 'weigh', arguments: { kg: 3.5, what: 'flour' } })),
        );
        assert.equal(called.status, 400, called.body);
        assert.equal(called.json?.error?.code, -32602);
        assert.match(called.json!.error!.message, /weigh.*cannot be called over HTTP: its definition is invalid \(x-mcp-header Kg is on a "number"/);
        assert.doesNotMatch(called.body, /weigh ran/);
      });

      it('the v2 client mirrors the declared arguments and gets through', async () => {
        const client = await connectV2(gw.mcp(connection), gw.auth, { pin: '2026-07-28' });
        try {
          await client.listTools();
          const result = await client.callTool({ name: 'query', arguments: { region: 'ap-south1', limit: 7, q: 'select' } });
          assert.match(JSON.stringify(result.content), /query ran/);
        } finally {
          await client.close();
        }
      });
    });
  }
});

describe('Mcp-Param-* headers of a tool neither pinned nor listed yet (fail closed)', () => {
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'param-headers-unlisted-'));
    const file = join(dir, 'tools.json');
    writeFileSync(file, JSON.stringify(tools));
    const stdio = { command: process.execPath, args: [listedToolsServerPath, file] };
    // Nothing is listed or pinned before each call below: every first call is to a tool the gateway has not seen.
    gw = await startTestGateway({
      connections: {
        pinned: { stdio },
        unpinned: { stdio, tools: { pin: false } },
        fresh: { stdio, tools: { pin: false } },
        once: { stdio, tools: { pin: false } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (connection: string, tool: string, args: Record<string, unknown>, extra: Array<[string, string]>) =>
    rawRequest(
      gw.mcp(connection),
      'POST',
      [...modernHeaders('tools/call', tool), ...extra, ['authorization', gw.auth.authorization!]],
      JSON.stringify(modernBody('tools/call', { name: tool, arguments: args })),
    );

  for (const connection of ['pinned', 'unpinned']) {
    it(`learns the definition from the upstream's tools/list before deciding, and refuses a disagreeing header (${connection})`, async () => {
      const bad = await call(connection, 'query', { region: 'us-west1', q: 'select' }, [['mcp-param-region', 'eu-north1']]);
      assert.equal(bad.status, 400, bad.body);
      assert.equal(bad.json?.error?.code, -32020);
      assert.doesNotMatch(bad.body, /query ran/);
      const ok = await call(connection, 'query', { region: 'us-west1', q: 'select' }, [['mcp-param-region', 'us-west1']]);
      assert.equal(ok.status, 200, ok.body);
      assert.match(ok.body, /query ran/);
    });
  }

  it('refuses a header missing for a declared argument on the very first call', async () => {
    const missing = await call('fresh', 'query', { region: 'us-west1', q: 'select' }, []);
    assert.equal(missing.status, 400, missing.body);
    assert.equal(missing.json?.error?.code, -32020);
  });

  it('refuses Mcp-Param headers for a tool the tools/list does not have: they cannot be checked', async () => {
    const unknown = await call('unpinned', 'not-a-tool', { region: 'us-west1' }, [['mcp-param-region', 'us-west1']]);
    assert.equal(unknown.status, 400, unknown.body);
    assert.equal(unknown.json?.error?.code, -32602);
    assert.match(unknown.json!.error!.message, /"not-a-tool" is not in the tools\/list of connection 'unpinned', so its Mcp-Param headers cannot be checked/);
  });

  it('reads the tools/list once per pooled session, however often a tool it does not list is called', async () => {
    for (let i = 0; i < 3; i++) {
      const unknown = await call('once', 'not-a-tool', { region: 'us-west1' }, [['mcp-param-region', 'us-west1']]);
      assert.equal(unknown.status, 400, unknown.body);
      assert.equal(unknown.json?.error?.code, -32602);
    }
    const store = gw.gateway.recorder!.store;
    // The pooled session the calls went through (sequential: the same one), and the three refusals, each recorded.
    const sessions = await store.listSessions({ connection: 'once', limit: 10 });
    let listings = 0;
    for (const session of sessions)
      listings += receivedTexts(await allEvents(store, session.id), 'toServer').filter((t) => JSON.parse(t).method === 'tools/list').length;
    assert.equal(listings, 1, `the gateway listed the tools ${listings} times`);
  });
});
