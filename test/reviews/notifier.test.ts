import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parseConfig } from '../../src/config/load.js';
import { type DeliveryTimings, ReviewNotifier } from '../../src/reviews/notifier.js';
import type { ReviewRow } from '../../src/store/review-types.js';
import { everythingStdio } from '../helpers/everything.js';
import { CapturedLog, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/** Review webhooks, received by a real local HTTP server: signing, retries, formats, routing, masking, and a gateway end to end. */

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

type Answer = { status: number; headers?: Record<string, string> };

/** A webhook receiver on a free loopback port; `answer` decides each response (the first request is n = 1). */
async function startReceiver(answer: (n: number) => Answer = () => ({ status: 200 })) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() });
      const a = answer(received.length);
      res.writeHead(a.status, a.headers).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    json: (i: number) => JSON.parse(received[i]!.body) as Record<string, any>,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const secret = 'whsec-test-key-0123456789';
const fast: Partial<DeliveryTimings> = { backoffMs: 20, attemptTimeoutMs: 2000, stopGraceMs: 100 };
const githubToken = `ghp_${'a1B2c3D4e5'.repeat(3)}x9Y8z7`;
const awsKey = 'AKIAQ3EGRZ4XPLVM2KD7';

/** A notifier built from a config (webhooks, rules, reviews.notify) as the gateway builds it. */
function notifierFor(config: Record<string, unknown>, timings: Partial<DeliveryTimings> = fast) {
  const parsed = parseConfig(stringify({ connections: { demo: { stdio: { command: 'node' } } }, ...config }), 'test.yaml', {
    env: { HOOK_SECRET: secret },
    readFile: () => {
      throw new Error('no files here');
    },
  });
  const log = new CapturedLog();
  return { notifier: ReviewNotifier.fromConfig(parsed, () => 'https://gw.example.com', log.logger, timings), log };
}

function review(over: Partial<ReviewRow> = {}): ReviewRow {
  const now = Date.now() * 1000;
  return {
    id: 'rv_test1',
    status: 'pending',
    rule: 'sums',
    connection: 'demo',
    sessionId: 'session-1',
    instanceId: 'gw-1',
    method: 'tools/call',
    target: 'get-sum',
    virtualServer: null,
    virtualTarget: null,
    params: JSON.stringify({ name: 'get-sum', arguments: { a: 1, b: 2 } }),
    digest: 'digest',
    requesterSubject: 'alice',
    requesterIssuer: 'dev',
    requesterEmail: 'alice@example.com',
    approverGroups: ['leads'],
    minApprovals: 1,
    approvals: [],
    createdAtUs: now,
    expiresAtUs: now + 15 * 60e6,
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    deciderEmail: null,
    decisionNote: null,
    ...over,
  };
}

const logged = (log: CapturedLog, msg: string) => log.lines.some((l) => l.msg === msg);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('review webhooks', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let notifier: ReviewNotifier | undefined;
  afterEach(async () => {
    await notifier?.stop();
    notifier = undefined;
    await receiver?.close();
  });

  it('signs the body with the secret, and names the event and the delivery', async () => {
    receiver = await startReceiver();
    let log: CapturedLog;
    ({ notifier, log } = notifierFor({
      notifications: {
        webhooks: [
          { name: 'signed', url: `${receiver.url}/signed`, secret: '${env:HOOK_SECRET}' },
          { name: 'plain', url: `${receiver.url}/plain` },
        ],
      },
      reviews: { notify: ['signed', 'plain'] },
    }));
    notifier.notify('review.created', review());
    await waitFor(() => receiver.received.length === 2, 'both deliveries');
    const signed = receiver.received.find((r) => r.path === '/signed')!;
    const timestamp = signed.headers['x-portcullis-timestamp'] as string;
    assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 60, 'a current unix timestamp');
    const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${signed.body}`).digest('hex')}`);
    const signature = Buffer.from(signed.headers['x-portcullis-signature'] as string);
    assert.ok(signature.length === expected.length && timingSafeEqual(signature, expected), 'the signature verifies with the secret');
    assert.equal(signed.headers['x-portcullis-event'], 'review.created');
    assert.match(signed.headers['x-portcullis-delivery'] as string, /^[0-9a-f-]{36}$/);
    assert.equal(signed.headers['content-type'], 'application/json');
    const body = JSON.parse(signed.body) as Record<string, any>;
    assert.equal(body.event, 'review.created');
    assert.equal(body.approveUrl, 'https://gw.example.com/reviews/rv_test1');
    assert.deepEqual(
      { ...body.review, createdAt: undefined, expiresAt: undefined },
      {
        id: 'rv_test1',
        status: 'pending',
        rule: 'sums',
        connection: 'demo',
        method: 'tools/call',
        target: 'get-sum',
        virtual: null,
        requester: { subject: 'alice', email: 'alice@example.com' },
        approvers: ['leads'],
        approvalsNeeded: 1,
        approvals: [],
        createdAt: undefined,
        expiresAt: undefined,
        decidedAt: null,
        decider: null,
        note: null,
        params: { name: 'get-sum', arguments: { a: 1, b: 2 } },
      },
    );
    const plain = receiver.received.find((r) => r.path === '/plain')!;
    assert.equal(plain.headers['x-portcullis-signature'], undefined, 'no secret, no signature');
    assert.notEqual(plain.headers['x-portcullis-delivery'], signed.headers['x-portcullis-delivery']);
    assert.ok(!log.text.includes(secret));
  });

  it('retries after a 503 with the same delivery id, then succeeds', async () => {
    receiver = await startReceiver((n) => ({ status: n === 1 ? 503 : 200 }));
    let log: CapturedLog;
    ({ notifier, log } = notifierFor({ notifications: { webhooks: [{ name: 'hook', url: receiver.url }] }, reviews: { notify: ['hook'] } }));
    notifier.notify(
      'review.decided',
      review({ status: 'rejected', decidedAtUs: Date.now() * 1000, deciderSubject: 'bob', deciderEmail: 'bob@example.com', decisionNote: 'not now' }),
    );
    await waitFor(() => logged(log, 'review notification delivered'), 'the delivery');
    assert.equal(receiver.received.length, 2);
    const [first, second] = receiver.received;
    assert.equal(first!.headers['x-portcullis-delivery'], second!.headers['x-portcullis-delivery']);
    assert.equal(first!.body, second!.body);
    assert.equal(receiver.json(1).review.decider.email, 'bob@example.com');
    assert.ok(log.lines.some((l) => l.msg === 'review notification failed; will retry' && l.problem === 'HTTP 503' && l.attempt === 1));
  });

  it('gives up at once on a 400 and on a redirect, and logs neither the secret nor the URL beyond its origin', async () => {
    receiver = await startReceiver((n) => (n === 1 ? { status: 400 } : { status: 302, headers: { location: '/elsewhere' } }));
    let log: CapturedLog;
    ({ notifier, log } = notifierFor({
      notifications: { webhooks: [{ name: 'hook', url: `${receiver.url}/hooks/T000/B000/path-secret?token=query-secret`, secret: '${env:HOOK_SECRET}' }] },
      reviews: { notify: ['hook'] },
    }));
    notifier.notify('review.created', review());
    await waitFor(() => logged(log, 'review notification not delivered; giving up'), 'giving up on the 400');
    notifier.notify('review.created', review({ id: 'rv_test2' }));
    await waitFor(() => log.lines.filter((l) => l.msg === 'review notification not delivered; giving up').length === 2, 'giving up on the redirect');
    await pause(200);
    assert.deepEqual(
      receiver.received.map((r) => r.path),
      ['/hooks/T000/B000/path-secret?token=query-secret', '/hooks/T000/B000/path-secret?token=query-secret'],
      'one attempt each, and the redirect was not followed',
    );
    const problems = log.lines.filter((l) => l.msg === 'review notification not delivered; giving up').map((l) => l.problem);
    assert.deepEqual(problems, ['HTTP 400', 'HTTP 302: a redirect, which is never followed']);
    assert.ok(log.lines.every((l) => l.to === undefined || l.to === receiver.url));
    for (const leak of [secret, 'path-secret', 'query-secret']) assert.ok(!log.text.includes(leak), `the log holds no ${leak}`);
  });

  it('honours Retry-After', async () => {
    receiver = await startReceiver((n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 204 }));
    let log: CapturedLog;
    ({ notifier, log } = notifierFor(
      { notifications: { webhooks: [{ name: 'hook', url: receiver.url }] }, reviews: { notify: ['hook'] } },
      { ...fast, backoffMs: 5 },
    ));
    notifier.notify('review.created', review());
    await waitFor(() => logged(log, 'review notification delivered'), 'the delivery');
    const gap = receiver.received[1]!.at - receiver.received[0]!.at;
    assert.ok(gap >= 950, `waited ${gap}ms, as Retry-After asked, not the 5ms backoff`);
  });

  it('stops retrying when stopped', async () => {
    receiver = await startReceiver(() => ({ status: 503 }));
    let log: CapturedLog;
    ({ notifier, log } = notifierFor(
      { notifications: { webhooks: [{ name: 'hook', url: receiver.url }] }, reviews: { notify: ['hook'] } },
      { ...fast, backoffMs: 60_000 },
    ));
    notifier.notify('review.created', review());
    await waitFor(() => logged(log, 'review notification failed; will retry'), 'the first failure');
    const started = Date.now();
    await notifier.stop();
    assert.ok(Date.now() - started < 1000, 'stop does not wait out the backoff');
    assert.ok(logged(log, 'review notification abandoned: the gateway is stopping'));
    assert.equal(receiver.received.length, 1);
  });

  it("sends Slack's {text, blocks} with a readable summary and the link", async () => {
    receiver = await startReceiver();
    ({ notifier } = notifierFor({ notifications: { webhooks: [{ name: 'slack', url: receiver.url, format: 'slack' }] }, reviews: { notify: ['slack'] } }));
    notifier.notify('review.created', review({ params: JSON.stringify({ name: 'get-sum', arguments: { a: '<!channel>' } }) }));
    await waitFor(() => receiver.received.length === 1, 'the delivery');
    const body = receiver.json(0) as { text: string; blocks: Array<Record<string, any>> };
    assert.deepEqual(Object.keys(body).sort(), ['blocks', 'text']);
    assert.equal(body.text, 'Review needed: tools/call get-sum on demo by alice@example.com (rule sums), an approval from leads');
    assert.deepEqual(
      body.blocks.map((b) => b.type),
      ['section', 'section', 'section', 'actions'],
    );
    assert.equal(body.blocks[0]!.text.type, 'mrkdwn');
    assert.ok(body.blocks[1]!.fields.some((f: { text: string }) => f.text === '*Approvers*\nleads (0/1)'));
    assert.match(body.blocks[2]!.text.text, /^```[\s\S]*&lt;!channel&gt;[\s\S]*```$/, 'params are shown, escaped so they cannot mention anyone');
    assert.deepEqual(body.blocks[3]!.elements[0], {
      type: 'button',
      text: { type: 'plain_text', text: 'Open in Portcullis' },
      url: 'https://gw.example.com/reviews/rv_test1',
    });
  });

  it('names the virtual server a held call came through, and the name used there', async () => {
    receiver = await startReceiver();
    ({ notifier } = notifierFor({
      notifications: {
        webhooks: [
          { name: 'slack', url: `${receiver.url}/slack`, format: 'slack' },
          { name: 'json', url: `${receiver.url}/json` },
        ],
      },
      reviews: { notify: ['slack', 'json'] },
    }));
    notifier.notify('review.created', review({ virtualServer: 'toolbox', virtualTarget: 'demo__get-sum' }));
    await waitFor(() => receiver.received.length === 2, 'both deliveries');
    const at = (path: string) =>
      JSON.parse(receiver.received.find((r) => r.path === path)!.body) as { text: string; review: { target: string; virtual: unknown } };
    assert.equal(
      at('/slack').text,
      'Review needed: tools/call get-sum (through toolbox as demo__get-sum) on demo by alice@example.com (rule sums), an approval from leads',
    );
    assert.deepEqual(at('/json').review.virtual, { server: 'toolbox', target: 'demo__get-sum' });
    assert.equal(at('/json').review.target, 'get-sum');
  });

  it("a rule's notify replaces reviews.notify, and a webhook gets only its events", async () => {
    receiver = await startReceiver();
    ({ notifier } = notifierFor({
      notifications: {
        webhooks: [
          { name: 'everyone', url: `${receiver.url}/everyone` },
          { name: 'sre', url: `${receiver.url}/sre` },
          { name: 'decisions', url: `${receiver.url}/decisions`, events: ['review.decided'] },
        ],
      },
      reviews: { notify: ['everyone'] },
      rules: [
        { name: 'sums', when: 'tool.name == "get-sum"', action: 'review', approvers: ['leads'], notify: ['sre', 'decisions'] },
        { name: 'quiet', when: 'tool.name == "echo"', action: 'review', approvers: ['leads'], notify: [] },
      ],
    }));
    notifier.notify('review.created', review({ id: 'rv_sums', rule: 'sums' }));
    notifier.notify('review.created', review({ id: 'rv_other', rule: 'default' }));
    notifier.notify('review.created', review({ id: 'rv_quiet', rule: 'quiet' }));
    notifier.notify('review.decided', review({ id: 'rv_sums', rule: 'sums', status: 'approved' }));
    await waitFor(() => receiver.received.length === 4, 'four deliveries');
    await pause(100);
    const got = receiver.received
      .map((r) => `${r.path} ${(JSON.parse(r.body) as { review: { id: string } }).review.id} ${r.headers['x-portcullis-event'] as string}`)
      .sort();
    assert.deepEqual(got, [
      '/decisions rv_sums review.decided',
      '/everyone rv_other review.created',
      '/sre rv_sums review.created',
      '/sre rv_sums review.decided',
    ]);
  });

  it('masks the params with the connection’s masking, even without recordArguments', async () => {
    receiver = await startReceiver();
    ({ notifier } = notifierFor({
      notifications: {
        webhooks: [
          { name: 'json', url: `${receiver.url}/json` },
          { name: 'slack', url: `${receiver.url}/slack`, format: 'slack' },
        ],
      },
      reviews: { notify: ['json', 'slack'] },
    }));
    const params = { name: 'deploy', arguments: { repo: 'acme/app', auth: `token ${githubToken}`, notes: `aws ${awsKey} in use` } };
    notifier.notify('review.created', review({ target: 'deploy', params: JSON.stringify(params) }));
    await waitFor(() => receiver.received.length === 2, 'both deliveries');
    for (const r of receiver.received) {
      assert.ok(!r.body.includes(githubToken) && !r.body.includes(awsKey), `no planted secret reaches ${r.path}`);
      assert.match(r.body, /\[REDACTED:[a-z-]+\]/);
    }
    const json = JSON.parse(receiver.received.find((r) => r.path === '/json')!.body) as { review: { params: { arguments: Record<string, string> } } };
    assert.equal(json.review.params.arguments.repo, 'acme/app', 'what is not a secret is shown');
  });

  it('withholds params the masking refuses', async () => {
    receiver = await startReceiver();
    ({ notifier } = notifierFor({ notifications: { webhooks: [{ name: 'hook', url: receiver.url }] }, reviews: { notify: ['hook'] } }));
    let deep: unknown = githubToken;
    for (let i = 0; i < 600; i++) deep = [deep];
    notifier.notify('review.created', review({ params: JSON.stringify({ name: 'x', arguments: { deep } }) }));
    await waitFor(() => receiver.received.length === 1, 'the delivery');
    assert.ok(!receiver.received[0]!.body.includes(githubToken));
    assert.match(receiver.json(0).review.params.withheld, /could not be masked/);
  });
});

describe('review webhooks through a gateway', () => {
  let gw: TestGateway;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let client: Client;
  const tokens: Record<string, string> = {};

  before(async () => {
    receiver = await startReceiver();
    gw = await startTestGateway(
      {
        identity: { dev: { users: { alice: ['eng'], bob: ['leads'] } } },
        notifications: { webhooks: [{ name: 'ops', url: `${receiver.url}/ops` }] },
        rules: [{ name: 'sums-need-review', when: 'tool.name == "get-sum"', action: 'review', approvers: ['leads'], notify: ['ops'] }],
        connections: { demo: { stdio: everythingStdio() } },
      },
      { reviewPollMs: 100 },
    );
    for (const u of ['alice', 'bob']) tokens[u] = await gw.tokenFor(u);
    client = new Client({ name: 'webhook-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(gw.mcp('demo'), { requestInit: { headers: { authorization: `Bearer ${tokens.alice}` } } }));
  });
  after(async () => {
    await client?.close();
    await gw?.stop();
    await receiver?.close();
  });

  it('a held call sends review.created with the link, and approving it sends review.decided', async () => {
    const call = client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }, undefined, { timeout: 30_000 });
    call.catch(() => {}); // settled later; marked handled so an early rejection is not reported as unhandled
    await waitFor(() => receiver.received.length === 1, 'review.created');
    const created = receiver.json(0);
    assert.equal(created.event, 'review.created');
    const id = created.review.id as string;
    assert.match(id, /^rv_/);
    assert.equal(created.approveUrl, `${gw.url}/reviews/${id}`);
    assert.deepEqual(
      [created.review.status, created.review.rule, created.review.connection, created.review.target],
      ['pending', 'sums-need-review', 'demo', 'get-sum'],
    );
    assert.equal(created.review.requester.subject, 'alice');
    assert.deepEqual(created.review.params.arguments, { a: 2, b: 40 });

    const res = await fetch(new URL(`/api/reviews/${id}/approve`, gw.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'fine' }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.match(JSON.stringify((await call).content), /42/);
    await waitFor(() => receiver.received.length === 2, 'review.decided');
    const decided = receiver.json(1);
    assert.equal(decided.event, 'review.decided');
    assert.equal(receiver.received[1]!.headers['x-portcullis-event'], 'review.decided');
    assert.deepEqual([decided.review.id, decided.review.status, decided.review.decider.subject, decided.review.note], [id, 'approved', 'bob', 'fine']);
    assert.equal(decided.review.approvals.length, 1);
  });
});
