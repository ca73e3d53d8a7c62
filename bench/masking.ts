import { builtInDetectors } from '../src/masking/catalog.js';
import { Masker } from '../src/masking/engine.js';
import { defaultFieldWords } from '../src/masking/fields.js';
import { replacer } from '../src/masking/replace.js';

/**
 * The masking benchmark's corpus and engine measurement: mixed JSON like what tools return (log lines, env
 * dumps, kubectl tables, SQL results, nested API objects) with a few secrets and personal data sprinkled in,
 * masked with every built-in detector on (the opt-in ones too) on the main thread, one core.
 */

const lines = [
  '2026-11-25T10:00:01.123Z INFO  http request served method=GET path=/api/v1/items?page=3 status=200 bytes=5120 duration_ms=12.4 user=1042',
  'NAME                         READY   STATUS    RESTARTS   AGE   IP            NODE',
  'api-7d9f8c6b5-x2k4p          1/1     Running   0          3d    10.0.12.44    ip-10-0-1-17.eu-west-1.compute.internal',
  ' id  | customer_name      | city        | total   | created_at',
  ' 812 | Ada Lovelace       | London      | 1204.50 | 2026-11-24 18:02:11+00',
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'HOME=/home/runner',
  'commit 3f1c2e9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e  Merge pull request #4711 from acme/feature/retry-backoff',
  'WARN  worker pool saturated queue_depth=128 workers=16 rejected=3 (retrying in 250ms)',
  '{"level":"debug","msg":"cache miss","key":"user:1042:profile","ttl":300,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}',
];
const secrets = [
  `GITHUB_TOKEN=ghp_${'Ab3'.repeat(12)}`,
  'DATABASE_URL=postgres://app:S3cr3t-Pa55@db.internal:5432/app',
  'customer card 4111 1111 1111 1111 on file',
  'contact: grace.hopper@example.com',
  `aws_access_key_id = AKIA${'Q7'.repeat(8)}`,
];

/** About `bytes` of JSON in tool-result shape: text contents, structured content and an embedded JSON document. */
export function mixedCorpus(bytes: number): string {
  const results: unknown[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const text = Array.from({ length: 40 }, (_, j) => (j === 17 && i % 7 === 0 ? secrets[i % secrets.length]! : lines[(i + j) % lines.length]!)).join('\n');
    const item = {
      content: [{ type: 'text', text }],
      structuredContent: {
        items: Array.from({ length: 8 }, (_, k) => ({
          id: i * 8 + k,
          name: `item-${k}`,
          price: 9.99 + k,
          tags: ['a', 'b'],
          updatedAt: '2026-11-25T10:00:00Z',
        })),
      },
      _meta: { embedded: JSON.stringify({ page: i, cursor: `c${i}`, stats: { hits: i * 3, misses: i } }, null, 2) },
    };
    const json = JSON.stringify(item);
    size += json.length;
    results.push(item);
  }
  return JSON.stringify(results);
}

/** Masking throughput over the corpus in MB/s (JSON text bytes), best of several passes after a warm-up. */
export function maskingThroughput(corpusBytes: number, passes: number): { mbPerSec: number; redactions: number; bytes: number } {
  const text = mixedCorpus(corpusBytes);
  const value = JSON.parse(text) as unknown;
  const masker = new Masker({ detectors: builtInDetectors, fieldWords: defaultFieldWords, replace: replacer({ kind: 'redact' }, Buffer.alloc(32)) });
  let redactions = 0;
  for (let i = 0; i < 2; i++) masker.maskValue(value);
  let best = Infinity;
  for (let i = 0; i < passes; i++) {
    const start = performance.now();
    redactions = masker.maskValue(value).redactions.length;
    best = Math.min(best, performance.now() - start);
  }
  return { mbPerSec: text.length / 1e6 / (best / 1000), redactions, bytes: text.length };
}
