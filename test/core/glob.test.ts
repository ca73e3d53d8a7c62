import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globToRegExp } from '../../src/core/glob.js';

test('a name glob: * matches any run of characters, everything else only itself', () => {
  const g = globToRegExp('delete_*');
  assert.equal(g.test('delete_file'), true);
  assert.equal(g.test('delete_'), true);
  assert.equal(g.test('xdelete_file'), false);
  assert.equal(globToRegExp('a.b').test('axb'), false, 'a dot is a dot');
  assert.equal(globToRegExp('read(*)').test('read(all)'), true, 'regex characters are literal');
  assert.equal(globToRegExp('*').test(''), true);
});

test('a * matches across a newline, so a name with one cannot step round a rule', () => {
  assert.equal(globToRegExp('delete_*').test('delete_\nfile'), true);
  assert.equal(globToRegExp('safe').test('safe\n'), false);
});
