import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { callApi } from '../test/helpers/api.js';
import { closeClient, connectClient } from '../test/helpers/client.js';
import { readLiveEvents } from '../test/helpers/console.js';
import { everythingStdio } from '../test/helpers/everything.js';
import { connectV2 } from '../test/helpers/modern.js';
import { type Cluster, clusterUsers, consoleCookie, type Replica, startCluster } from '../test/helpers/replicas.js';
import type { Verdicts } from './bridges.js';

/**
 * Issue 18: how fast a change made on one replica takes effect on another (target 200 ms), and how fast the console
 * of one replica shows a session another serves (target 1 s). Two real `portcullis gateway` processes on one PostgreSQL
 * database (the cluster of the e2e tests); each client talks to one replica directly, so where a call is held and
 * where a session lives is certain, and every decision is made through the other. Times are from the moment the
 * decision's HTTP request is sent (so they include the deciding replica's own work, its commit and NOTIFY) to the
 * moment its effect is seen: the held call's answer at the client, or the event in the other replica's live stream.
 * Last, with the cluster's defaults: how soon after a replica is killed its sessions are sealed as cut off (30 s).
 */

export interface PropagationSettings {
  /** Samples of each kind. */
  rounds: number;
  /** Replicas killed with -9, one at a time (each takes about `cluster.goneAfter`). */
  kills: number;
}

const connection = 'everything';
const granted = 'granted';

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Resolves when `seen` holds an event `match` accepts, with the time it was first seen (checked every millisecond). */
function whenSeen(seen: Array<Record<string, unknown>>, match: (e: Record<string, unknown>) => boolean, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + 30_000;
    const timer = setInterval(() => {
      if (seen.some(match)) {
        clearInterval(timer);
        resolve(performance.now());
      } else if (performance.now() > deadline) {
        clearInterval(timer);
        reject(new Error(`not seen within 30 s: ${what}`));
      }
    }, 1);
  });
}

const mcpOf = (r: Replica, c: string) => new URL(`/mcp/${c}`, r.url);

/** A call held for review on replica A, approved through replica B: approval sent → the client's answer. */
async function reviewReleases(cluster: Cluster, s: PropagationSettings): Promise<number[]> {
  const [a, b] = cluster.replicas as [Replica, Replica];
  const lead = await cluster.token('lead');
  const client = await connectV2(mcpOf(a, connection), cluster.auth, { pin: '2026-07-28' });
  const times: number[] = [];
  try {
    for (let i = 0; i < s.rounds; i++) {
      const message = `hold ${i}`;
      let answeredAt = 0;
      const call = client.callTool({ name: 'echo', arguments: { message } }, { timeout: 60_000 }).then(() => {
        answeredAt = performance.now();
      });
      let id = '';
      while (id === '') {
        const r = await callApi<{ reviews?: Array<{ id: string; params: { arguments?: { message?: string } } }> }>(
          a.url,
          lead,
          'GET',
          '/api/reviews?status=pending',
        );
        id = r.body.reviews?.find((v) => v.params.arguments?.message === message)?.id ?? '';
        if (id === '') await new Promise((r) => setTimeout(r, 5));
      }
      const sentAt = performance.now();
      const approved = await callApi(b.url, lead, 'POST', `/api/reviews/${id}/approve`, { note: 'bench' });
      if (approved.status !== 200) throw new Error(`approve: HTTP ${approved.status} ${JSON.stringify(approved.body)}`);
      await call;
      times.push(answeredAt - sentAt);
    }
  } finally {
    await client.close();
  }
  return times;
}

/** A legacy session on replica A whose grant is revoked through replica B: revocation sent → A's console shows it closed. */
async function revocationsEnd(cluster: Cluster, s: PropagationSettings, auditor: string): Promise<number[]> {
  const [a, b] = cluster.replicas as [Replica, Replica];
  const [outsider, lead] = [await cluster.token('outsider'), await cluster.token('lead')];
  const controller = new AbortController();
  const seen = await readLiveEvents(a, auditor, controller.signal);
  const times: number[] = [];
  try {
    for (let i = 0; i < s.rounds; i++) {
      const asked = await callApi<{ request?: { id: string } }>(a.url, outsider, 'POST', '/api/access', {
        connection: granted,
        duration: '30m',
        reason: `bench ${i}`,
      });
      if (asked.status !== 201) throw new Error(`access request: HTTP ${asked.status} ${JSON.stringify(asked.body)}`);
      const id = asked.body.request!.id;
      const approved = await callApi(a.url, lead, 'POST', `/api/access/${id}/approve`);
      if (approved.status !== 200) throw new Error(`approve access: HTTP ${approved.status} ${JSON.stringify(approved.body)}`);
      const transport = new StreamableHTTPClientTransport(mcpOf(a, granted), { requestInit: { headers: { authorization: `Bearer ${outsider}` } } });
      const { client } = await connectClient(transport, 'granted');
      try {
        await client.callTool({ name: 'echo', arguments: { message: 'while granted' } });
        const sessionId = transport.sessionId!;
        const closed = whenSeen(seen, (e) => e.type === 'session-closed' && e.id === sessionId, `session ${sessionId} closed on ${a.instanceId}`);
        const sentAt = performance.now();
        const revoked = await callApi(b.url, lead, 'POST', `/api/access/${id}/revoke`, { note: 'bench' });
        if (revoked.status !== 200) throw new Error(`revoke: HTTP ${revoked.status} ${JSON.stringify(revoked.body)}`);
        times.push((await closed) - sentAt);
      } finally {
        await closeClient(client, transport).catch(() => {});
      }
    }
  } finally {
    controller.abort();
  }
  return times;
}

/**
 * A legacy session opened on replica B, and a call in it: from the moment the client starts connecting (or sends the
 * call) to the moment replica A's console shows the session opened (or the call among its exchanges).
 */
async function sessionsShown(cluster: Cluster, s: PropagationSettings, auditor: string): Promise<{ sessions: number[]; exchanges: number[] }> {
  const [a, b] = cluster.replicas as [Replica, Replica];
  const controller = new AbortController();
  const seen = await readLiveEvents(a, auditor, controller.signal);
  const sessions: number[] = [];
  const exchanges: number[] = [];
  try {
    for (let i = 0; i < s.rounds; i++) {
      const transport = new StreamableHTTPClientTransport(mcpOf(b, connection), { requestInit: { headers: cluster.auth } });
      const startedAt = performance.now();
      const { client } = await connectClient(transport, `watched-${i}`);
      try {
        const sessionId = transport.sessionId!;
        const opened = (e: Record<string, unknown>) => e.type === 'session-opened' && (e.session as { id?: string } | undefined)?.id === sessionId;
        sessions.push((await whenSeen(seen, opened, `session ${sessionId} in the console of ${a.instanceId}`)) - startedAt);
        const message = `watched ${i}`;
        const called = (e: Record<string, unknown>) =>
          e.type === 'session-events' && e.id === sessionId && (e.events as Array<{ payload?: string }>).some((l) => l.payload?.includes(message));
        const shown = whenSeen(seen, called, `the call of session ${sessionId} in the console of ${a.instanceId}`);
        const sentAt = performance.now();
        await client.callTool({ name: 'echo', arguments: { message } });
        exchanges.push((await shown) - sentAt);
      } finally {
        await closeClient(client, transport).catch(() => {});
      }
    }
  } finally {
    controller.abort();
  }
  return { sessions, exchanges };
}

/**
 * A replica killed with -9 (defaults: `cluster.goneAfter` 15 s): from the kill to its open legacy session sealed as
 * cut off by a survivor (target 30 s). Restarted after each sample, so each kill finds a replica that serves.
 */
async function cutOffSealed(cluster: Cluster, samples: number): Promise<number[]> {
  const store = await cluster.store.open();
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const b = cluster.replicas[1]!;
      const transport = new StreamableHTTPClientTransport(mcpOf(b, connection), { requestInit: { headers: cluster.auth } });
      const { client } = await connectClient(transport, `doomed-${i}`);
      await client.callTool({ name: 'echo', arguments: { message: `before the kill ${i}` } });
      const sessionId = transport.sessionId!;
      const killedAt = performance.now();
      await cluster.kill(1, { untilDown: false });
      for (;;) {
        const row = await store.getSession(sessionId);
        if (row?.status === 'cut-off') break;
        if (performance.now() - killedAt > 120_000) throw new Error(`session ${sessionId} not sealed as cut off within 2 minutes (${row?.status})`);
        await new Promise((r) => setTimeout(r, 50));
      }
      times.push(performance.now() - killedAt);
      await transport.close().catch(() => {});
      await cluster.restart(1);
    }
  } finally {
    await store.close();
  }
  return times;
}

function report(label: string, times: number[], limitMs: number, verdicts: Verdicts): Record<string, number> {
  const p50 = percentile(times, 0.5);
  const p95 = percentile(times, 0.95);
  const max = Math.max(...times);
  console.log(`${label.padEnd(62)} p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${max.toFixed(1)} ms (${times.length} samples)`);
  verdicts.push({ target: `${label}, p95 (ms)`, value: p95, limit: `≤ ${limitMs}`, pass: p95 <= limitMs });
  return { p50, p95, max, samples: times.length };
}

export async function propagation(verdicts: Verdicts, s: PropagationSettings): Promise<Record<string, unknown>> {
  console.log(
    `\nPropagation between replicas (two gateway processes on one PostgreSQL database, each client on one replica, each decision made through the other; ${s.rounds} samples each)`,
  );
  const cluster = await startCluster({
    count: 2,
    users: { ...clusterUsers, lead: ['leads'], outsider: ['outsiders'] },
    connections: {
      [connection]: { stdio: { ...everythingStdio(), spares: 0 } },
      [granted]: { stdio: { ...everythingStdio(), spares: 0 }, access: { groups: ['testers'], approvers: ['leads'], maxGrant: '1h' } },
    },
    extra: {
      log: { level: 'warn' },
      rules: [{ name: 'held', when: 'tool.name == "echo" && arguments.message.startsWith("hold")', action: 'review', approvers: ['leads'] }],
    },
  });
  try {
    const auditor = await consoleCookie(cluster);
    const review = report('a held call released by an approval through another replica', await reviewReleases(cluster, s), 200, verdicts);
    const revocation = report("a grant revoked through another replica ends the owner's session", await revocationsEnd(cluster, s, auditor), 200, verdicts);
    const shown = await sessionsShown(cluster, s, auditor);
    const consoleSessions = report("another replica's session in this one's console (from connecting)", shown.sessions, 1000, verdicts);
    const consoleExchanges = report("another replica's call in this one's console (from sending it)", shown.exchanges, 1000, verdicts);
    const sealed = await cutOffSealed(cluster, s.kills);
    const cutOff = report("a killed replica's session sealed as cut off by a survivor (from kill -9)", sealed, 30_000, verdicts);
    return { review, revocation, consoleSessions, consoleExchanges, cutOff };
  } finally {
    await cluster.stop();
  }
}
