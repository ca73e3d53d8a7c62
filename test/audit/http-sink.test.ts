import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { callApi } from '../helpers/api.js';
import { AuditCollector, assertShippedWhole } from '../helpers/audit-collector.js';
import { closeClient, connectClient, edgeTransport } from '../helpers/client.js';
import { consoleSignIn } from '../helpers/console.js';
import { everythingStdio } from '../helpers/everything.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { allEvents } from '../helpers/recorded.js';
import { backends, type TestStore } from '../helpers/stores.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Audit streams to an HTTP collector (Splunk HEC's raw endpoint shape) with real sessions: server-everything over
 * stdio, the official SDK client over Streamable HTTP. What is checked is what a SIEM sees: every recorded event of
 * a session, in order, none missing, however long the collector refused them, and across a gateway restart.
 */

const token = 'hec-token-5f1d7c2a-test-only';
process.env.PORTCULLIS_TEST_HEC_TOKEN = token;

/** The store of the gateways of one backend's run: SQLite in the data directory, or a PostgreSQL schema of its own. */
let storeUrl: string | undefined;

function auditConfig(collector: AuditCollector, dataDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dataDir,
    ...(storeUrl === undefined ? {} : { store: storeUrl }),
    roles: { admins: ['testers'] },
    audit: {
      pollInterval: '1s',
      sinks: [
        {
          name: 'splunk',
          http: { url: collector.url, headers: { Authorization: 'Splunk ${env:PORTCULLIS_TEST_HEC_TOKEN}' }, batch: 7 },
        },
      ],
      ...extra,
    },
    connections: { everything: { stdio: everythingStdio() } },
  };
}

/** Opens a session, makes a few calls, closes it; its id once the gateway has sealed it. */
async function oneSession(gw: TestGateway, calls: number): Promise<string> {
  const store = gw.gateway.recorder!.store;
  const before = new Set((await store.listSessions({ limit: 1000 })).map((s) => s.id));
  const transport = edgeTransport('streamable-http', gw, 'everything');
  const { client } = await connectClient(transport);
  for (let i = 0; i < calls; i++) await client.callTool({ name: 'echo', arguments: { message: `audit call ${i}` } });
  await client.listTools();
  await closeClient(client, transport);
  let id: string | undefined;
  await waitFor(async () => {
    const fresh = (await store.listSessions({ limit: 1000 })).filter((s) => !before.has(s.id) && s.connection === 'everything' && s.edge !== 'modern');
    id = fresh.find((s) => s.status !== 'open')?.id;
    return id !== undefined;
  }, 'the session to be sealed');
  return id!;
}

async function metric(gw: TestGateway, name: string): Promise<number | undefined> {
  const text = await (await fetch(new URL('/metrics', gw.url), { headers: gw.apiAuth })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{sink="splunk"}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

for (const backend of backends) {
  describe(`audit streams to an HTTP collector: ${backend.name}`, () => {
    let collector: AuditCollector;
    let dataDir: string;
    let ts: TestStore;

    before(async () => {
      collector = await AuditCollector.start();
      dataDir = mkdtempSync(join(tmpdir(), 'portcullis-audit-'));
      ts = backend.make();
      storeUrl = backend.name === 'sqlite' ? undefined : ts.url;
    });
    after(async () => {
      await collector?.stop();
      await ts?.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('a collector answering 500 for a while receives every event of the session, in order, once it recovers; /metrics shows it fall behind', async () => {
      const gw = await startTestGateway(auditConfig(collector, dataDir), { auditRetryMs: 50 });
      try {
        collector.failing = true;
        const session = await oneSession(gw, 5);
        await waitFor(() => collector.refused >= 4, 'the collector to refuse a few attempts');
        assert.equal(collector.of(session).length, 0);
        assert.ok((await metric(gw, 'portcullis_audit_failures_total'))! >= 4);
        const waiting = (await allEvents(gw.gateway.recorder!.store, session)).length;
        await waitFor(async () => ((await metric(gw, 'portcullis_audit_backlog_events')) ?? 0) >= waiting, 'the backlog gauge to count the waiting events');
        // The failure is logged once, not once per retry.
        const failed = gw.log.lines.filter((l) => String(l.msg).startsWith('audit sink splunk failed'));
        assert.equal(failed.length, 1);
        assert.match(String(failed[0]!.err), /answered 500/);
        // The console's admin page warns of it.
        const admin = await consoleSignIn(gw, 'tester');
        const { audit } = (await (await admin.get('/api/console/connections')).json()) as { audit: Array<{ name: string; warning: string | null }> };
        assert.equal(audit.length, 1);
        assert.match(audit[0]!.warning ?? '', /^audit sink splunk \(http\) has been failing since .*answered 500.*events? wait in the store/);

        collector.failing = false;
        await waitFor(async () => collector.closed(session), 'the session to arrive whole', 30_000);
        await assertShippedWhole(gw.gateway.recorder!.store, collector.of(session), session);
        const first = collector.of(session)[0]!;
        assert.equal(first.kind, 'lifecycle');
        assert.equal(first.connection, 'everything');
        assert.equal(first.subject, 'tester');
        assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        assert.ok(
          collector.authorizations.every((a) => a === `Splunk ${token}`),
          'the header secret, resolved from its reference',
        );
        assert.ok(gw.log.lines.some((l) => l.msg === 'audit sink splunk works again'));
        assert.ok(!gw.log.text.includes(token), 'the token is in no log line');
        await waitFor(async () => (await metric(gw, 'portcullis_audit_backlog_events')) === 0, 'the backlog gauge to drain');
        const recovered = (await (await admin.get('/api/console/connections')).json()) as { audit: Array<{ warning: string | null }> };
        assert.equal(recovered.audit[0]!.warning, null, 'no warning once it keeps up');
        assert.ok((await metric(gw, 'portcullis_audit_last_shipped_timestamp_seconds'))! > Date.now() / 1000 - 60);
      } finally {
        await gw.stop();
      }
    });

    it('a sink that never answers does not slow the sessions: their calls complete while the events wait in the store', async () => {
      collector.records.length = 0;
      const config = auditConfig(collector, dataDir);
      // Longer than the test may take on a busy machine: the request stays held, never timed out and sent again.
      (config.audit as { sinks: Array<{ http: Record<string, unknown> }> }).sinks[0]!.http.timeout = '10m';
      // Twenty-one sessions in a row: the server processes of the last ones may still be exiting when the next opens,
      // more than one caller's default cap of 16 on a busy machine; the cap is not what this test is about.
      config.limits = { principal: { stdioProcesses: 64 } };
      const gw = await startTestGateway(config, { auditRetryMs: 50 });
      try {
        collector.hanging = true;
        const session = await oneSession(gw, 1);
        await waitFor(() => collector.held > 0, 'the shipper to be waiting on the sink');
        // Twenty more sessions while the sink holds the only request the shipper sends: none of them waits for it.
        const more: string[] = [];
        for (let i = 0; i < 20; i++) more.push(await oneSession(gw, 2));
        assert.equal(collector.held, 1, 'one batch in flight, nothing more sent');
        const waiting = (await Promise.all([session, ...more].map(async (id) => (await allEvents(gw.gateway.recorder!.store, id)).length))).reduce(
          (a, b) => a + b,
        );
        await waitFor(async () => ((await metric(gw, 'portcullis_audit_backlog_events')) ?? 0) >= waiting, 'the backlog to count every waiting event');
        collector.release();
        for (const id of [session, ...more]) {
          await waitFor(() => collector.closed(id), 'every session to arrive once the sink answers', 30_000);
          await assertShippedWhole(gw.gateway.recorder!.store, collector.of(id), id);
        }
      } finally {
        collector.release();
        await gw.stop();
      }
    });

    it('a gateway restarted with a backlog resumes from its cursor: nothing missing, nothing taken sent again', async () => {
      collector.records.length = 0;
      let gw = await startTestGateway(auditConfig(collector, dataDir), { auditRetryMs: 50 });
      let shipped: string;
      let waiting: string;
      try {
        shipped = await oneSession(gw, 3);
        await waitFor(() => collector.closed(shipped), 'the first session to be shipped');
        collector.refused = 0;
        collector.failing = true;
        waiting = await oneSession(gw, 4);
        await waitFor(() => collector.refused >= 3, 'the collector to refuse the second session');
      } finally {
        await gw.stop();
      }
      const takenBefore = collector.records.length;
      collector.failing = false;
      gw = await startTestGateway(auditConfig(collector, dataDir), { auditRetryMs: 50 });
      try {
        await waitFor(() => collector.closed(waiting), 'the backlog to be shipped after the restart', 30_000);
        await assertShippedWhole(gw.gateway.recorder!.store, collector.of(waiting), waiting);
        await assertShippedWhole(gw.gateway.recorder!.store, collector.of(shipped), shipped);
        const keys = collector.records.map((r) => `${r.session}/${r.seq}`);
        assert.equal(new Set(keys).size, keys.length, 'no record taken by the collector was sent again');
        assert.ok(collector.records.length > takenBefore);
      } finally {
        await gw.stop();
      }
    });

    it('a sink takes only the kinds of events it is configured for', async () => {
      collector.records.length = 0;
      const config = auditConfig(collector, dataDir);
      const audit = config.audit as { sinks: Array<Record<string, unknown>> };
      audit.sinks[0]!.events = ['lifecycle'];
      const gw = await startTestGateway(config, { auditRetryMs: 50 });
      try {
        const session = await oneSession(gw, 2);
        await waitFor(() => collector.closed(session), 'the session to be shipped');
        const events = await allEvents(gw.gateway.recorder!.store, session);
        const lifecycle = events.filter((e) => ['open', 'negotiated', 'close', 'gap', 'truncated'].includes(e.kind));
        assert.ok(
          events.some((e) => e.kind === 'message'),
          'the session has messages',
        );
        assert.deepEqual(
          collector.of(session).map((r) => [r.seq, r.kind]),
          lifecycle.map((e) => [e.seq, 'lifecycle']),
        );
      } finally {
        await gw.stop();
      }
    });

    it('a stopping gateway ships the closes of the sessions it ends', async () => {
      collector.records.length = 0;
      const gw = await startTestGateway(auditConfig(collector, dataDir), { auditRetryMs: 50 });
      let session: string | undefined;
      try {
        const { client } = await connectClient(edgeTransport('streamable-http', gw, 'everything'));
        await client.callTool({ name: 'echo', arguments: { message: 'left open' } });
        session = (await gw.gateway.recorder!.store.listSessions({ limit: 100 })).find((s) => s.status === 'open' && s.edge !== 'modern')?.id;
        assert.ok(session !== undefined);
        await waitFor(() => collector.of(session!).length > 0, 'its first events to be shipped');
      } finally {
        await gw.stop();
      }
      const records = collector.of(session);
      assert.equal(records.at(-1)?.event, 'close', 'the close, recorded as the gateway ended the session, was shipped before it stopped');
      assert.match(JSON.stringify(records.at(-1)?.payload), /shutting down/);
    });

    it('a sink takes the just-in-time access events from the ledger: a request and its approval, in order', async () => {
      collector.records.length = 0;
      const config = auditConfig(collector, dataDir);
      const gw = await startTestGateway(
        {
          ...config,
          identity: { dev: { users: { bob: ['eng'], alice: ['approvers'] } } },
          connections: { prod: { stdio: everythingStdio(), access: { groups: ['sre'], approvers: ['approvers'], maxGrant: '1h' } } },
        },
        { auditRetryMs: 50 },
      );
      try {
        const asked = await callApi<{ request: { id: string } }>(gw.url, await gw.tokenFor('bob'), 'POST', '/api/access', {
          connection: 'prod',
          duration: '10m',
          reason: 'incident 4711',
        });
        assert.equal(asked.status, 201);
        const id = asked.body.request.id;
        assert.equal((await callApi(gw.url, await gw.tokenFor('alice'), 'POST', `/api/access/${id}/approve`)).status, 200);
        await waitFor(() => collector.of(id).length >= 2, 'the request and its approval to be shipped');
        const records = collector.of(id);
        assert.deepEqual(
          records.map((r) => [r.kind, r.event, r.subject, r.connection, (r.payload as { event: string }).event]),
          [
            ['access', 'access-request', 'bob', 'prod', 'requested'],
            ['access', 'access-request', 'bob', 'prod', 'approved'],
          ],
        );
        assert.ok(records[0]!.seq < records[1]!.seq, 'in ledger order');
      } finally {
        await gw.stop();
      }
    });
  });
}
