import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromiumPath, launchBrowser } from '../test/helpers/browser.js';
import { DevIdentity } from '../src/identity/dev-identity.js';
import { openStore } from '../src/store/open.js';
import { emptyBatch, openSessionRow } from '../src/store/types.js';
import { benchPostgresStore } from './postgres.js';
import { everythingStdioConnection, startGateway } from './processes.js';

/**
 * The console's session list against a store of 100,000 recorded sessions, beside the same list over 1,000 in the
 * same run: every query the list page makes (first page, a page 100 deep, by user, by connection, by flag, by text,
 * an operator's own), timed over HTTP as a signed-in auditor, on SQLite and on PostgreSQL; and the page itself in
 * Chromium, from navigation to the rendered table.
 */

const users = 500;
const connections = 12;

/** Writes `n` closed sessions over the last 90 days: 2% had a denial, 5% a redaction; one user in 100 is `bench`. */
async function seed(url: string, n: number): Promise<void> {
  const store = await openStore(url);
  try {
    const now = Date.now() * 1000;
    const span = 90 * 86_400_000_000;
    for (let done = 0; done < n; ) {
      const batch = emptyBatch();
      for (let i = 0; i < 2000 && done < n; i++, done++) {
        const opened = Math.floor(now - Math.random() * span);
        const subject = done % 100 === 0 ? 'bench' : `user-${done % users}`;
        const id = randomBytes(16).toString('base64url').replace(/^-/, 'A');
        batch.sessionsOpened.push(
          openSessionRow({
            id,
            instanceId: 'bench-seed',
            connection: `conn-${done % connections}`,
            subject,
            openedAtUs: opened,
            email: `${subject}@example.com`,
          }),
        );
        batch.sealed.push({
          id,
          status: 'closed',
          closedAtUs: opened + 60_000_000,
          closeReason: 'client ended the session',
          eventCount: 12,
          lastHash: 'a'.repeat(64),
          seal: 'seed',
          sealKeyId: 'seed',
          denials: done % 50 === 7 ? 1 : 0,
          redactions: done % 20 === 3 ? 2 : 0,
        });
      }
      await store.write(batch);
    }
  } finally {
    await store.close();
  }
}

interface Timed {
  p50: number;
  p90: number;
}

async function time(samples: number, f: () => Promise<void>): Promise<Timed> {
  for (let i = 0; i < 5; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    await f();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)]!, p90: times[Math.floor(times.length * 0.9)]! };
}

/** A dev sign-in to a bench gateway's console, as its page does: the cookie. */
async function signIn(base: string, dataDir: string): Promise<string> {
  const dev = await DevIdentity.load(dataDir, { users: { bench: ['bench'] }, allowNonLoopback: false, tokenLifetimeMs: 3_600_000 });
  const res = await fetch(`${base}/auth/dev`, {
    method: 'POST',
    headers: { origin: base, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'bench', key: dev.consoleKey }),
  });
  if (!res.ok) throw new Error(`console sign-in: HTTP ${res.status} ${await res.text()}`);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

const queries: Array<[string, string]> = [
  ['first page', ''],
  ['in progress (the live list)', 'status=open&limit=100'],
  ['a page 100 deep', 'deep'],
  ['one user', 'user=user-17'],
  ['an operator’s own', 'user=bench'],
  ['one connection', 'connection=conn-3'],
  ['had a denial', 'denied=true'],
  ['had a redaction, one user', 'redacted=true&user=user-3'],
  ['text found', 'q=user-42'],
  ['text found nowhere', 'q=nobody-has-this'],
];

/** Every list query against one gateway: p50 and p90 over HTTP. */
async function listTimings(base: string, cookie: string): Promise<Map<string, Timed>> {
  const get = async (query: string) => {
    const res = await fetch(`${base}/api/sessions?${query.includes('limit=') ? query : `limit=50${query ? `&${query}` : ''}`}`, { headers: { cookie } });
    if (!res.ok) throw new Error(`list ${query}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { sessions: unknown[]; next: string | null };
  };
  // The cursor of page 100, walked to as a person paging back would.
  let cursor: string | null = null;
  for (let page = 1; page < 100; page++) {
    const r: { next: string | null } = await get(cursor ? `cursor=${cursor}` : '');
    if (r.next === null) break;
    cursor = r.next;
  }
  const out = new Map<string, Timed>();
  for (const [name, q] of queries) {
    const query = q === 'deep' ? (cursor ? `cursor=${cursor}` : '') : q;
    out.set(name, await time(30, async () => void (await get(query))));
  }
  return out;
}

/** The sessions page in Chromium: from navigation until its table is drawn, median of 10 loads. */
async function pageLoad(base: string, cookie: string): Promise<number | undefined> {
  if (!existsSync(chromiumPath)) return undefined;
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    const [name, value] = cookie.split('=') as [string, string];
    await context.addCookies([{ name, value, url: base }]);
    const page = await context.newPage();
    const times: number[] = [];
    for (let i = 0; i < 12; i++) {
      const start = performance.now();
      await page.goto(`${base}/`);
      await page.locator('table.sessions tbody tr').nth(49).waitFor();
      if (i >= 2) times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  } finally {
    await browser.close();
  }
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

export async function consoleSessionList(verdicts: Array<{ target: string; value: number; limit: string; pass: boolean }>): Promise<Record<string, unknown>> {
  const sizes = [1000, 100_000];
  const results: Record<string, unknown> = {};
  for (const backend of ['SQLite', 'PostgreSQL'] as const) {
    const timings = new Map<number, { list: Map<string, Timed>; page: number | undefined; seedMs: number }>();
    for (const n of sizes) {
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-console-'));
      const pg = backend === 'PostgreSQL' ? await benchPostgresStore() : undefined;
      const url = pg?.url ?? `sqlite:${join(dir, 'sessions.db')}`;
      try {
        const seedStart = performance.now();
        await seed(url, n);
        const seedMs = performance.now() - seedStart;
        const gateway = await startGateway({ everything: everythingStdioConnection() }, { store: url, roles: { auditors: ['bench'] } });
        try {
          const base = `http://127.0.0.1:${gateway.port}`;
          const cookie = await signIn(base, gateway.dataDir!);
          const list = await listTimings(base, cookie);
          timings.set(n, { list, page: await pageLoad(base, cookie), seedMs });
        } finally {
          await gateway.stop();
        }
      } finally {
        await pg?.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const small = timings.get(sizes[0]!)!;
    const large = timings.get(sizes[1]!)!;
    console.log(
      `\nConsole session list, ${backend}: ${sizes[1]!.toLocaleString('en')} recorded sessions beside ${sizes[0]!.toLocaleString('en')} (seeded in ${fmt(large.seedMs / 1000)} s), 50 a page, as a signed-in auditor`,
    );
    console.log('query                           1k p50 ms   100k p50 ms   100k p90 ms   100k / 1k');
    let worst = 0;
    for (const [name] of queries) {
      const a = small.list.get(name)!;
      const b = large.list.get(name)!;
      worst = Math.max(worst, b.p50);
      console.log(
        `${name.padEnd(30)} ${fmt(a.p50).padStart(10)} ${fmt(b.p50).padStart(13)} ${fmt(b.p90).padStart(13)}   ${fmt(b.p50 / a.p50, 2).padStart(8)}×`,
      );
    }
    if (small.page !== undefined && large.page !== undefined) {
      console.log(
        `${'the page in Chromium, drawn'.padEnd(30)} ${fmt(small.page).padStart(10)} ${fmt(large.page).padStart(13)} ${''.padStart(13)}   ${fmt(large.page / small.page, 2).padStart(8)}×`,
      );
      verdicts.push({
        target: `console sessions page drawn, ${backend}, 100k / 1k sessions`,
        value: large.page / small.page,
        limit: '≤ 1.5',
        pass: large.page / small.page <= 1.5,
      });
    } else console.log('(the page in Chromium: skipped, /usr/bin/chromium is not installed)');
    verdicts.push({ target: `console list, ${backend}, slowest query p50 at 100k sessions (ms)`, value: worst, limit: '≤ 100', pass: worst <= 100 });
    results[backend] = Object.fromEntries([...timings].map(([n, t]) => [n, { seedMs: t.seedMs, page: t.page, list: Object.fromEntries(t.list) }]));
  }
  return results;
}
