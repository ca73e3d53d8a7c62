import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { startUngroupableGateway, type UngroupableGateway } from '../helpers/ungroupable-gateway.js';

/**
 * `portcullis sessions list --groups` beside pooled sessions it cannot group, run on the gateway's host with its config
 * against its store while it runs (the gateway of ungroupable-gateway.ts): erased ones (one vouched for by a signed
 * ledger entry, one destroyed with SQL), one under a KEK the config lacks, one altered. Each is listed in place of its
 * groups, marked, and after the table says who erased it, when and why (UNSIGNED when nothing vouches for it), or why it
 * cannot be read and what to do; a group near an erasure is marked; --json carries the API's fields.
 */

describe('portcullis sessions list --groups, pooled sessions that cannot be grouped', () => {
  let fixture: UngroupableGateway;
  let sessions: UngroupableGateway['sessions'];
  let groupIds: UngroupableGateway['groupIds'];
  let configFile = '';
  let noKekConfigFile = '';

  before(async () => {
    fixture = await startUngroupableGateway();
    ({ sessions, groupIds } = fixture);
    const dir = fixture.gw.dataDir;
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify(fixture.config));
    // The same store and keys, with no KEK: every encrypted recording is unreadable here.
    const { encryption: _, ...recording } = fixture.config.recording as Record<string, unknown>;
    noKekConfigFile = join(dir, 'no-kek.yaml');
    writeFileSync(noKekConfigFile, stringify({ ...fixture.config, recording }));
  });
  after(async () => {
    await fixture?.stop();
  });

  const listGroups = (config: string, ...args: string[]) => runCli(['sessions', 'list', '--groups', '--connection', 'echo', '--config', config, ...args]);
  const jsonLines = <T>(out: string): T[] =>
    out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as T);
  const lineOf = (out: string, id: string) => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';

  it('marks each in the table: the erased, unsigned where nothing vouches for it, the unreadable; the group near an erasure; the kept group nothing', async () => {
    const r = await listGroups(configFile);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^GROUP +FIRST \(UTC\) +DURATION +USER +CONNECTION +EXCHANGES +BY +SESSIONS$/m);
    assert.match(lineOf(r.stdout, groupIds.kim), / kim +echo +1 +trace b{31}4 +1$/);
    assert.match(lineOf(r.stdout, groupIds.adaAfter), / ada +echo +1 +trace a{31}1 +1 PARTLY ERASED\?$/);
    assert.match(lineOf(r.stdout, sessions.eve), / eve +echo +- +not grouped +1 ERASED$/);
    assert.match(lineOf(r.stdout, sessions.ned), / ned +echo +- +not grouped +1 ERASED UNSIGNED$/);
    assert.match(lineOf(r.stdout, sessions.olga), / olga +echo +- +not grouped +1 UNREADABLE$/);
    assert.match(lineOf(r.stdout, sessions.lou), / lou +echo +- +not grouped +1 UNREADABLE$/);
    assert.equal(lineOf(r.stdout, groupIds.eve), '', "eve's group cannot be told apart any more");
  });

  it('says after the table who erased each, when and why; why the others cannot be read and what to do; which groups may be partly erased', async () => {
    const { stdout } = await listGroups(configFile);
    const notes = stdout.slice(stdout.indexOf('\n\nNot grouped: these pooled sessions cannot be read here, and grouping reads them\n'));
    assert.ok(notes.length > 0 && notes.length < stdout.length, stdout);
    const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z';
    assert.match(notes, new RegExp(`^ {2}${sessions.eve} {2}erased ${iso} by adam \\(.*\\): privacy request 7$`, 'm'));
    assert.match(
      notes,
      new RegExp(
        `^ {2}${sessions.ned} {2}erased ${iso} by adam \\(.*\\): privacy request 8; UNSIGNED: no signed ledger entry vouches for this erasure \\(verify fails it\\)`,
        'm',
      ),
    );
    assert.match(
      notes,
      new RegExp(
        `^ {2}${sessions.olga} {2}unreadable: the recording of ${sessions.olga} is encrypted under KEK 'k2', which this config does not have: add it to recording\\.encryption\\.keys.*\\n {4,}fix: add the KEK it names to recording\\.encryption\\.keys, with the same key material as the gateway that recorded it`,
        'm',
      ),
    );
    assert.match(
      notes,
      new RegExp(
        `^ {2}${sessions.lou} {2}unreadable: session ${sessions.lou} event \\d+'s payload does not decrypt: it was altered.*\\n {4,}fix: \`portcullis sessions verify ${sessions.lou}\` tells what was changed`,
        'm',
      ),
    );
    assert.match(
      notes,
      /\n\nMay be partly erased: exchanges of the group's user on its connection, within the idle gap of it, were erased with these sessions/,
    );
    assert.match(notes, new RegExp(`^ {2}${groupIds.adaAfter} {2}session ${sessions.ada[0]} erased ${iso} by adam \\(.*\\): privacy request 7$`, 'm'));
    assert.doesNotMatch(notes, new RegExp(groupIds.kim), 'the kept group has nothing to say');
  });

  it('--json: the groups and the sessions that cannot be grouped, one a line, with the fields the API gives', async () => {
    const r = await listGroups(configFile, '--json');
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines<Record<string, unknown>>(r.stdout);
    const api = await fixture.listed();
    const groups = lines.filter((l) => l.unreadableKind === undefined);
    assert.ok(
      groups.every((g) => g.idleGapMs === 300_000),
      'each group says the idle gap it was grouped by',
    );
    assert.deepEqual(
      groups.map(({ idleGapMs: _, ...g }) => g),
      api.groups,
    );
    assert.deepEqual(
      lines.filter((l) => l.unreadableKind === 'erased'),
      api.erased,
    );
    assert.deepEqual(
      lines.filter((l) => l.unreadableKind === 'no-kek' || l.unreadableKind === 'altered'),
      api.unreadable,
    );
    assert.deepEqual(
      api.erased.map((s) => [s.id, s.erased.vouched]),
      [
        [sessions.ned, false],
        [sessions.eve, true],
        [sessions.ada[0], true],
      ],
      'the erasures, newest first, each vouched for or not',
    );
  });

  it('with no KEK in the config, every encrypted session is listed apart, saying which KEK it needs; the erased still say who erased them', async () => {
    const r = await listGroups(noKekConfigFile, '--json');
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines<{ id: string; unreadableKind?: string; unreadable?: string }>(r.stdout);
    assert.ok(
      lines.every((l) => l.unreadableKind !== undefined),
      'no group: nothing can be read',
    );
    const kim = lines.find((l) => l.id === sessions.kim);
    assert.equal(kim?.unreadableKind, 'no-kek');
    assert.match(kim.unreadable!, /encrypted under KEK 'k1', which this config does not have/);
    assert.equal(lines.find((l) => l.id === sessions.eve)?.unreadableKind, 'erased');
    const table = await listGroups(noKekConfigFile);
    assert.match(lineOf(table.stdout, sessions.kim), / kim +echo +- +not grouped +1 UNREADABLE$/);
  });
});
