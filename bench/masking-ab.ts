import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mixedCorpus } from './masking.js';

/**
 * The masking engine, two or more builds side by side: each build's engine (a `dist` directory, for example one
 * built from main in a scratch worktree) masks the benchmark's corpus in the same process, the builds taking turns
 * round after round, so a shared, noisy machine weighs on each alike. Each round measures as `npm run bench` does
 * (best of a few passes, wall time) and also by CPU time, which other processes disturb far less; the medians over
 * the rounds are reported.
 *
 *   node dist/bench/masking-ab.js before=/tmp/main/dist after=dist [--rounds 7] [--passes 3] [--mb 16]
 */

interface Build {
  name: string;
  mask: (value: unknown) => number;
  value: unknown;
  wall: number[];
  cpu: number[];
  redactions: number;
}

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const rounds = option('--rounds', 7);
const passes = option('--passes', 3);
const bytes = option('--mb', 16) * 1e6;
const specs = args.filter((a) => a.includes('='));
if (specs.length === 0) throw new Error('usage: node dist/bench/masking-ab.js name=path/to/dist [name=path/to/dist …] [--rounds n] [--passes n] [--mb n]');

const text = mixedCorpus(bytes);
const builds: Build[] = [];
for (const spec of specs) {
  const [name, dir] = spec.split('=') as [string, string];
  const load = (file: string) => import(pathToFileURL(resolve(dir, 'src/masking', file)).href);
  const [{ builtInDetectors }, { Masker }, { defaultFieldWords }, { replacer }] = await Promise.all([
    load('catalog.js'),
    load('engine.js'),
    load('fields.js'),
    load('replace.js'),
  ]);
  // As bench/masking.ts: every built-in detector on, the default field rules, replaced by label.
  const masker = new Masker({ detectors: builtInDetectors, fieldWords: defaultFieldWords, replace: replacer({ kind: 'redact' }, Buffer.alloc(32)) });
  // Each build walks its own parse of the corpus, so none walks objects another has just warmed.
  builds.push({ name, mask: (value) => masker.maskValue(value).redactions.length, value: JSON.parse(text), wall: [], cpu: [], redactions: 0 });
}
for (const b of builds) for (let i = 0; i < 2; i++) b.redactions = b.mask(b.value);

const mbPerSec = (ms: number) => text.length / 1e6 / (ms / 1000);
for (let r = 0; r < rounds; r++) {
  // Alternate the order, so no build always runs right after another's garbage.
  for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
    let wall = Infinity;
    let cpu = Infinity;
    for (let p = 0; p < passes; p++) {
      const start = performance.now();
      const cpuStart = process.cpuUsage().user;
      b.mask(b.value);
      cpu = Math.min(cpu, (process.cpuUsage().user - cpuStart) / 1000);
      wall = Math.min(wall, performance.now() - start);
    }
    b.wall.push(mbPerSec(wall));
    b.cpu.push(mbPerSec(cpu));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
console.log(
  `Masking engine A/B: ${(text.length / 1e6).toFixed(1)} MB of mixed JSON, every detector on, ${rounds} rounds of best-of-${passes} passes, builds alternating`,
);
for (const b of builds) {
  console.log(
    `${b.name.padEnd(10)} wall median ${median(b.wall).toFixed(0)} MB/s (${list(b.wall)})   CPU median ${median(b.cpu).toFixed(0)} MB/s (${list(b.cpu)})   ${b.redactions} redactions a pass`,
  );
}
