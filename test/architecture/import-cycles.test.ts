import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * No import cycle in src/, between files or between folders (no two folders import each other, directly or round
 * a longer loop): dependency-cruiser with the rules in .dependency-cruiser.cjs. Its parser reads JavaScript only
 * (TypeScript 7 has no compiler API for it), so it reads the compiled ESM in dist/src, where every import survives
 * 1:1 except `import type`, which the compiler erases. The type-only imports count too: the second check asks the
 * compiler for every file each source imports (`tsc --explainFiles`), writes one stand-in module per source that
 * imports exactly those, and cruises that with the same rules. Run it alone with `npm run check:imports`.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const depcruise = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const config = join(root, '.dependency-cruiser.cjs');

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(ext))
    .map((f) => join(dir, f));
}

/** Runs dependency-cruiser over `files`; the violations it reports, as text (empty when there are none). */
function cruise(files: string[], cwd: string): string {
  const run = spawnSync(process.execPath, [depcruise, '--config', config, '--output-type', 'err', '--no-progress', ...files], { cwd, encoding: 'utf8' });
  if (run.error) throw run.error;
  assert.ok(run.status === 0 || /violations?/.test(run.stdout), `dependency-cruiser failed to run (exit ${run.status}): ${run.stderr}${run.stdout}`);
  return run.status === 0 ? '' : run.stdout;
}

test('the compiled code of src/ has no import cycle between files or folders', () => {
  // Only outputs of today's sources: a stale .js left by a moved or deleted source is not part of the code.
  const compiled = join(root, 'dist/src');
  const files = filesUnder(compiled, '.js').filter((f) => existsSync(join(root, 'src', relative(compiled, f)).replace(/\.js$/, '.ts')));
  assert.ok(files.length > 100, `expected the build's output in dist/src, found ${files.length} files: run npm run build`);
  const violations = cruise(
    files.map((f) => relative(root, f)),
    root,
  );
  if (violations !== '') assert.fail(`import cycles in src/ (compiled code):\n${violations}`);
});

test('the sources of src/, type-only imports included, have no import cycle between files or folders', () => {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--noEmit', '--incremental', 'false', '--explainFiles'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  // Each file the program holds, then (indented) why: `Imported via '<specifier>' from file '<importer>'`, one per import.
  const imports = new Map<string, Set<string>>();
  let current: string | undefined;
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith(' ')) {
      current = line.trim();
      continue;
    }
    const m = /^\s+Imported via (['"]).*?\1 from file (['"])(.*?)\2/.exec(line);
    if (m === null || current === undefined) continue;
    const importer = posix.normalize(m[3]!);
    if (!importer.startsWith('src/') || !current.startsWith('src/')) continue;
    if (!imports.has(importer)) imports.set(importer, new Set());
    imports.get(importer)!.add(current);
  }
  const edges = [...imports.values()].reduce((n, s) => n + s.size, 0);
  assert.ok(edges > 300, `expected the compiler to list src/'s imports, found ${edges} (tsc exit ${run.status}): ${run.stderr}${run.stdout.slice(0, 2000)}`);

  const stand = mkdtempSync(join(tmpdir(), 'portcullis-imports-'));
  try {
    for (const source of filesUnder(join(root, 'src'), '.ts').map((f) => relative(root, f).split('\\').join('/'))) {
      const module = join(stand, source.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(module), { recursive: true });
      const lines = [...(imports.get(source) ?? [])].map((target) => {
        const spec = posix.relative(posix.dirname(source), target.replace(/\.tsx?$/, '.js'));
        return `import '${spec.startsWith('.') ? spec : `./${spec}`}';\n`;
      });
      writeFileSync(module, lines.join(''));
    }
    const violations = cruise(['src'], stand);
    if (violations !== '') assert.fail(`import cycles in src/ (sources, type-only imports included):\n${violations}`);
  } finally {
    rmSync(stand, { recursive: true, force: true });
  }
});

test('the rules catch a folder cycle without any file cycle, a file cycle inside one folder, and core importing ours', () => {
  const stand = mkdtempSync(join(tmpdir(), 'portcullis-imports-'));
  try {
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(stand, path)), { recursive: true });
      writeFileSync(join(stand, path), text);
    };
    // a → b → a between folders, though no file imports itself round a loop.
    write('src/a/one.js', "import '../b/two.js';\n");
    write('src/b/two.js', "import '../a/three.js';\n");
    write('src/a/three.js', '');
    write('src/c/p.js', "import './q.js';\n");
    write('src/c/q.js', "import './p.js';\n");
    write('src/core/word.js', "import '../c/q.js';\n");
    const violations = cruise(['src'], stand);
    assert.match(violations, /no-folder-cycle: src\/a/);
    assert.match(violations, /no-circular: src\/c\/p\.js/);
    assert.doesNotMatch(violations, /no-circular: src\/a/);
    assert.match(violations, /core-imports-nothing-of-ours: src\/core\/word\.js/);
  } finally {
    rmSync(stand, { recursive: true, force: true });
  }
});
