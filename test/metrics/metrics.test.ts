import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/** GET /metrics: Prometheus' text format, guarded as /api is, counting what real sessions did. */

const apiToken = 'metrics-api-token-9c4e-long-enough';

/** The value of one series in an exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  let gw: TestGateway;
  const scrape = async () => {
    const res = await fetch(new URL('/metrics', gw.url), { headers: { authorization: `Bearer ${apiToken}` } });
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    process.env.PORTCULLIS_TEST_METRICS_TOKEN = apiToken;
    gw = await startTestGateway({
      api: { token: '${env:PORTCULLIS_TEST_METRICS_TOKEN}' },
      connections: { everything: { stdio: everythingStdio() } },
      rules: [{ name: 'no-sums', when: 'tool.name == "get-sum"', action: 'deny', message: 'no sums here' }],
    });
  });
  after(async () => {
    delete process.env.PORTCULLIS_TEST_METRICS_TOKEN;
    await gw?.stop();
  });

  it('needs the API token when one is set, as /api does', async () => {
    const none = await fetch(new URL('/metrics', gw.url));
    assert.equal(none.status, 401);
    assert.match(((await none.json()) as { error: string }).error, /needs a bearer token/);
    const wrong = await fetch(new URL('/metrics', gw.url), { headers: { authorization: 'Bearer wrong' } });
    assert.equal(wrong.status, 401);
    await wrong.text();
    const post = await fetch(new URL('/metrics', gw.url), { method: 'POST', headers: { authorization: `Bearer ${apiToken}` } });
    assert.equal(post.status, 405);
    await post.text();
  });

  it('counts sessions, messages and verdicts per connection, and the open sessions now', async () => {
    const before = await scrape();
    assert.match(before, /^portcullis_build_info\{version="[^"]+"\} 1$/m);
    assert.match(before, /^process_cpu_seconds_total /m, 'the process metrics too');
    assert.equal(sample(before, 'portcullis_sessions_open{connection="everything"}'), undefined);
    const client = new Client({ name: 'metrics-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(gw.mcp('everything'), { requestInit: { headers: gw.auth } });
    await client.connect(transport);
    await client.callTool({ name: 'echo', arguments: { message: 'counted' } });
    await assert.rejects(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), /no sums here/);
    const during = await scrape();
    assert.equal(sample(during, 'portcullis_sessions_open{connection="everything"}'), 1);
    assert.equal(sample(during, 'portcullis_sessions_opened_total{connection="everything"}'), 1);
    // initialize, initialized, two calls (the denied one is received too).
    assert.ok(sample(during, 'portcullis_messages_total{connection="everything",direction="toServer"}')! >= 4);
    assert.ok(sample(during, 'portcullis_messages_total{connection="everything",direction="toClient"}')! >= 2);
    assert.equal(sample(during, 'portcullis_verdicts_total{connection="everything",stage="guard",action="answer"}'), 1);
    await transport.terminateSession();
    await client.close();
    // DELETE is answered once the end is recorded; the session counts as closed once its server has exited too.
    await waitFor(async () => sample(await scrape(), 'portcullis_sessions_closed_total{connection="everything"}') === 1, 'the session to be counted closed');
    const later = await scrape();
    assert.equal(sample(later, 'portcullis_sessions_closed_total{connection="everything"}'), 1);
    assert.equal(sample(later, 'portcullis_sessions_open{connection="everything"}'), undefined);
    assert.ok(!later.includes('portcullis_agent_'), 'no agent series without agents');
    assert.ok(!later.includes(apiToken) && !gw.log.text.includes(apiToken));
  });
});
