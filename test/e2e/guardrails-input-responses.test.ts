import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { openStore } from '../../src/store/open.js';
import { closeClient, connectClient } from '../helpers/client.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectV2, modernBody, modernHeaders, rawRequest, type RawAnswer } from '../helpers/modern.js';
import { allEvents } from '../helpers/recorded.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Guardrail conditions see the client's answers to the server's questions (`inputResponses`): a rule that denies a
 * call once the client answered an elicitation a certain way refuses it, in the 2026-07-28 era (MRTR) and the
 * legacy one alike, and the server never gets that answer.
 */

const rule = {
  name: 'no-ada',
  when: 'connection == "guarded" && tool.name == "trigger-elicitation-request" && inputResponses.exists(r, r.method == "elicitation/create" && r.result.?content.?name.orValue("") == "Ada Lovelace")',
  action: 'deny',
  message: 'Ada may not sign this',
};
const elicitCaps = { 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };

describe('guardrails on inputResponses', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      rules: [rule],
      connections: { guarded: { stdio: everythingStdio(), tools: { pin: false } }, open: { stdio: everythingStdio(), tools: { pin: false } } },
    });
  });
  after(async () => gw?.stop());

  const post = (params: Record<string, unknown>, id: number): Promise<RawAnswer> =>
    rawRequest(
      gw.mcp('guarded'),
      'POST',
      [...modernHeaders('tools/call', 'trigger-elicitation-request'), ['authorization', `Bearer ${gw.token}`]],
      JSON.stringify(modernBody('tools/call', { name: 'trigger-elicitation-request', arguments: {}, _meta: elicitCaps, ...params }, id)),
    );

  /** Opens an MRTR round and answers it with `name`. */
  async function answerWith(name: string): Promise<RawAnswer> {
    const first = await post({}, 1);
    const round = first.json?.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
    assert.equal(round?.resultType, 'input_required', first.body);
    const [key] = Object.keys(round.inputRequests);
    return post({ inputResponses: { [key!]: { action: 'accept', content: { name } } }, requestState: round.requestState }, 2);
  }

  it('a 2026-07-28 client pinned to the modern era is refused once it answers as the rule forbids', async () => {
    const elicited: unknown[] = [];
    const client = await connectV2(gw.mcp('guarded'), gw.auth, { pin: '2026-07-28' }, elicited);
    try {
      const outcome = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }).then(
        (r) => JSON.stringify(r),
        (err: Error) => err.message,
      );
      assert.equal(elicited.length, 1, 'the client was asked');
      assert.match(outcome, /Ada may not sign this/);
      assert.doesNotMatch(outcome, /Ada Lovelace/, 'the server never acted on the answer');
    } finally {
      await client.close();
    }
  });

  it('an MRTR retry answered otherwise completes, and the forbidden answer is refused with the rule named', async () => {
    const fine = await answerWith('Grace Hopper');
    assert.equal(fine.status, 200, fine.body);
    assert.match(JSON.stringify(fine.json?.result), /Grace Hopper/);
    const refused = await answerWith('Ada Lovelace');
    assert.equal(refused.json?.id, 2, refused.body);
    assert.equal(refused.json?.error?.code, -31003, refused.body);
    assert.match(refused.json!.error!.message, /rule 'no-ada'.*Ada may not sign this/);
  });

  it('a legacy client is refused the same way, and only on the guarded connection', async () => {
    for (const [connection, refused] of [
      ['open', false],
      ['guarded', true],
    ] as const) {
      const transport = new StreamableHTTPClientTransport(gw.mcp(connection), { requestInit: { headers: gw.auth } });
      const { client, inbox } = await connectClient(transport);
      try {
        const outcome = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }).then(
          (r) => JSON.stringify(r),
          (err: Error) => err.message,
        );
        assert.equal(inbox.elicitation.length, 1);
        if (refused) {
          assert.match(outcome, /Ada may not sign this/);
          assert.doesNotMatch(outcome, /Ada Lovelace/);
        } else assert.match(outcome, /Ada Lovelace/);
      } finally {
        await closeClient(client, transport);
      }
    }
  });

  it('judges an answer against every call in flight when it cannot be tied to one (fails closed)', async () => {
    const transport = new StreamableHTTPClientTransport(gw.mcp('guarded'), { requestInit: { headers: gw.auth } });
    const { client, inbox } = await connectClient(transport);
    try {
      let longDone = false;
      let progressed = false;
      const long = client
        .callTool({ name: 'trigger-long-running-operation', arguments: { duration: 6, steps: 3 } }, undefined, {
          timeout: 30_000,
          onprogress: () => {
            progressed = true;
          },
        })
        .finally(() => {
          longDone = true;
        });
      // The long call is at the server (it reports progress) before the second one starts.
      await waitFor(async () => progressed, 'the long call to report progress');
      let longInFlightWhenAsked: boolean | undefined;
      const asking = client.callTool({ name: 'trigger-elicitation-request', arguments: {} }).then(
        (r) => JSON.stringify(r),
        (err: Error) => err.message,
      );
      await waitFor(async () => inbox.elicitation.length === 1, 'the elicitation');
      longInFlightWhenAsked = !longDone;
      const outcome = await asking;
      assert.equal(longInFlightWhenAsked, true, 'two calls were in flight when the server asked');
      assert.match(outcome, /Ada may not sign this/);
      assert.doesNotMatch(outcome, /Ada Lovelace/);
      assert.match(JSON.stringify((await long).content), /Long running operation/i, 'the other call is not affected');
    } finally {
      await closeClient(client, transport);
    }
  });

  it('records the verdict on the answer', async () => {
    const store = await openStore(`sqlite:${join(gw.dataDir, 'portcullis.db')}`, { reader: true });
    try {
      const rows = await store.listSessions({ connection: 'guarded', limit: 50 });
      const events = (await Promise.all(rows.map((r) => allEvents(store, r.id)))).flat();
      const verdicts = events
        .filter((e) => e.kind === 'verdict')
        .map((e) => JSON.parse(e.payload as string) as { stage: string; details?: { rule?: string; answerTo?: string } })
        .filter((v) => v.stage === 'guard' && v.details?.answerTo === 'elicitation/create');
      assert.ok(verdicts.length >= 1, 'the deny of the answer is recorded');
      assert.equal(verdicts[0]!.details!.rule, 'no-ada');
    } finally {
      await store.close();
    }
  });
});
