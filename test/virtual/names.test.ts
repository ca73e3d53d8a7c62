import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VirtualMemberConfig } from '../../src/upstream/config.js';
import { decodeCursor, encodeCursor, mergePages } from '../../src/virtual/merge.js';
import { VirtualNames } from '../../src/virtual/names.js';

function member(connection: string, more: Partial<VirtualMemberConfig> = {}): VirtualMemberConfig {
  return { connection, prefix: `${connection}__`, tools: {}, prompts: {}, resources: {}, rename: {}, descriptions: {}, ...more };
}

const names = new VirtualNames([
  member('everything', { tools: { include: ['echo', 'get*'], exclude: ['*Env*'] }, rename: { echo: 'say' }, descriptions: { echo: 'Says it back' } }),
  member('files', { prefix: 'fs_', resources: { include: ['file:///tmp/*'] } }),
]);
const [everything, files] = names.members;

describe('MemberNames: exposed names', () => {
  it('prefixes selected names, renames exactly, leaves out unselected ones', () => {
    assert.equal(everything!.expose('tool', 'echo'), 'say');
    assert.equal(everything!.expose('tool', 'getTinyImage'), 'everything__getTinyImage');
    assert.equal(everything!.expose('tool', 'printEnv'), undefined, 'not included');
    assert.equal(everything!.expose('tool', 'getEnv'), undefined, 'excluded though included');
    assert.equal(everything!.expose('prompt', 'simple_prompt'), 'everything__simple_prompt', 'the tool selection is not the prompts’');
    assert.equal(files!.expose('tool', 'read_file'), 'fs_read_file');
  });

  it('selects resources by URI glob and overrides descriptions by the server name', () => {
    assert.equal(files!.selectsResource('file:///tmp/a.txt'), true);
    assert.equal(files!.selectsResource('file:///etc/passwd'), false);
    assert.equal(everything!.selectsResource('test://static/resource/1'), true);
    assert.equal(everything!.description('echo'), 'Says it back');
    assert.equal(everything!.description('toString'), undefined);
  });
});

describe('VirtualNames: routes', () => {
  it('routes an exposed name to its member and the server name', () => {
    assert.deepEqual(names.route('tool', 'say'), { member: 0, serverName: 'echo' });
    assert.deepEqual(names.route('tool', 'everything__getTinyImage'), { member: 0, serverName: 'getTinyImage' });
    assert.deepEqual(names.route('tool', 'fs_read_file'), { member: 1, serverName: 'read_file' });
    assert.deepEqual(names.route('prompt', 'fs_x'), { member: 1, serverName: 'x' });
  });

  it('routes nothing for a name no member exposes', () => {
    assert.equal(names.route('tool', 'everything__echo'), undefined, 'renamed away: its prefixed form is not a name');
    assert.equal(names.route('tool', 'everything__printEnv'), undefined, 'not selected');
    assert.equal(names.route('tool', 'read_file'), undefined, 'no prefix');
    assert.equal(names.route('tool', 'nobody__x'), undefined);
  });

  it('an empty prefix exposes the server names as they are', () => {
    const only = new VirtualNames([member('everything', { prefix: '' })]);
    assert.equal(only.members[0]!.expose('tool', 'echo'), 'echo');
    assert.deepEqual(only.route('tool', 'echo'), { member: 0, serverName: 'echo' });
  });
});

describe('merged lists', () => {
  it('merges in member order with exposed names, keeping unchanged items as they are', () => {
    const unchanged = new VirtualNames([member('a', { prefix: '' })]);
    const tool = { name: 'x', inputSchema: { type: 'object' } };
    const merged = mergePages('tools/list', [{ names: unchanged.members[0]!, member: 0, result: { tools: [tool] } }], () => {});
    assert.equal((merged.tools as unknown[])[0], tool, 'the server’s own object when nothing changes');

    const out = mergePages(
      'tools/list',
      [
        { names: everything!, member: 0, result: { tools: [{ name: 'echo', description: 'Echoes' }, { name: 'printEnv' }, { name: 'getTinyImage' }] } },
        { names: files!, member: 1, result: { tools: [{ name: 'read_file' }], nextCursor: 'p2' } },
      ],
      () => {},
    );
    assert.deepEqual(
      (out.tools as { name: string; description?: string }[]).map((t) => [t.name, t.description]),
      [
        ['say', 'Says it back'],
        ['everything__getTinyImage', undefined],
        ['fs_read_file', undefined],
      ],
    );
    assert.deepEqual(decodeCursor(out.nextCursor as string), new Map([['files', 'p2']]));
  });

  it('filters resources by URI and tells who listed each', () => {
    const owners: [number, string, boolean][] = [];
    const out = mergePages(
      'resources/list',
      [{ names: files!, member: 1, result: { resources: [{ uri: 'file:///tmp/a' }, { uri: 'file:///etc/b' }] } }],
      (...o) => owners.push(o),
    );
    assert.deepEqual(out, { resources: [{ uri: 'file:///tmp/a' }] });
    assert.deepEqual(owners, [[1, 'file:///tmp/a', false]]);
  });

  it('a cursor is only one it gave', () => {
    assert.equal(encodeCursor(new Map()), undefined);
    assert.deepEqual(decodeCursor(encodeCursor(new Map([['a', '1']]))!), new Map([['a', '1']]));
    assert.equal(decodeCursor('garbage'), undefined);
    assert.equal(decodeCursor('vs1.!!!'), undefined);
    assert.equal(decodeCursor(`vs1.${Buffer.from('{"a":1}').toString('base64url')}`), undefined);
  });
});
