import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * What every `portcullis <command>` loads before it runs: the CLI declares all its commands (their flags and help)
 * first, so whatever the declarations import statically, every command pays for. They import commander and nothing
 * else from node_modules; each command's action (and with it the gateway, the MCP SDKs, the store drivers, the config
 * loader) comes by `await import()` when that command runs. Read from the compiled code with dependency-cruiser, as
 * the import-cycle test does, following only the static imports from the CLI's entry.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const depcruise = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const entry = 'dist/src/cli/index.js';

interface Dependency {
  /** As written in the import. */
  module: string;
  resolved: string;
  dynamic: boolean;
  coreModule: boolean;
}

test("the CLI's command declarations import no package but commander; the actions are imported when they run", () => {
  // Not the project's rules, which leave node_modules out: here the packages are what is looked for.
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-startup-'));
  const config = join(dir, 'cruise.cjs');
  writeFileSync(config, "module.exports = { options: { doNotFollow: { path: 'node_modules' } } };\n");
  let run: SpawnSyncReturns<string>;
  try {
    run = spawnSync(process.execPath, [depcruise, '--config', config, '--output-type', 'json', '--no-progress', entry], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (run.error) throw run.error;
  const { modules } = JSON.parse(run.stdout) as { modules: Array<{ source: string; dependencies: Dependency[] }> };
  const bySource = new Map(modules.map((m) => [m.source, m.dependencies]));
  assert.ok(bySource.has(entry), `expected ${entry} in dependency-cruiser's output: run npm run build (${run.stderr.slice(0, 500)})`);

  const loaded = new Set([entry]);
  const packages = new Set<string>();
  const dynamic = new Set<string>();
  for (const queue = [entry]; queue.length > 0; ) {
    for (const d of bySource.get(queue.pop()!) ?? []) {
      if (d.coreModule) continue;
      if (d.dynamic) {
        dynamic.add(d.resolved);
        continue;
      }
      // A package by its name as imported: one whose exports map the cruiser cannot resolve counts too.
      const inPackage = /^(?:@[^/]+\/)?[^./][^/]*/.exec(d.module);
      if (inPackage) packages.add(inPackage[0]);
      else if (!loaded.has(d.resolved)) {
        loaded.add(d.resolved);
        queue.push(d.resolved);
      }
    }
  }
  assert.deepEqual([...packages].sort(), ['commander'], `what the command declarations load (${[...loaded].sort().join(', ')})`);
  // The graph was read whole: the actions are there, behind dynamic imports.
  for (const action of ['dist/src/cli/gateway-action.js', 'dist/src/cli/sessions/list-action.js', 'dist/src/cli/agents/actions.js'])
    assert.ok(dynamic.has(action), `${action} is imported when its command runs`);
});
