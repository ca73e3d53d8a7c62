import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join, list, raw, render, sql } from '../../src/store/sql.js';

/** The statement builder the domain stores write their SQL with: one text, each backend's placeholders. */

describe('sql: statements written once for both backends', () => {
  it('renders each value as a placeholder, ? for SQLite and $n for PostgreSQL, the values apart from the text', () => {
    const id = "x' OR '1'='1";
    const s = sql`SELECT * FROM reviews WHERE id = ${id} AND approval_count = ${2}`;
    assert.deepEqual(render(s, 'question'), { text: 'SELECT * FROM reviews WHERE id = ? AND approval_count = ?', values: [id, 2] });
    assert.deepEqual(render(s, 'numbered'), { text: 'SELECT * FROM reviews WHERE id = $1 AND approval_count = $2', values: [id, 2] });
  });

  it('inlines fragments and numbers their placeholders in order', () => {
    const where = join([sql`subject = ${'alice'}`, sql`connection = ${'prod'}`], ' AND ');
    const s = sql`SELECT * FROM sessions WHERE ${where} ORDER BY opened_at_us DESC LIMIT ${50}`;
    assert.deepEqual(render(s, 'numbered'), {
      text: 'SELECT * FROM sessions WHERE subject = $1 AND connection = $2 ORDER BY opened_at_us DESC LIMIT $3',
      values: ['alice', 'prod', 50],
    });
    assert.deepEqual(render(s, 'question').text, 'SELECT * FROM sessions WHERE subject = ? AND connection = ? ORDER BY opened_at_us DESC LIMIT ?');
  });

  it('a fragment used twice gives its value twice', () => {
    const ids = sql`${'a'}::text`;
    assert.deepEqual(render(sql`${ids} ${ids}`, 'numbered'), { text: '$1::text $2::text', values: ['a', 'a'] });
  });

  it('raw text is taken as it is and binds nothing; an empty join is empty', () => {
    assert.deepEqual(render(sql`SELECT 1${raw('')} FROM ${raw('agents')}`, 'numbered'), { text: 'SELECT 1 FROM agents', values: [] });
    assert.deepEqual(render(join([]), 'question'), { text: '', values: [] });
  });

  it('list gives one placeholder per value, for IN and VALUES', () => {
    assert.deepEqual(render(sql`id IN (${list(['a', 'b', 'c'])})`, 'numbered'), { text: 'id IN ($1, $2, $3)', values: ['a', 'b', 'c'] });
    assert.deepEqual(render(sql`VALUES (${list([1, null])})`, 'question'), { text: 'VALUES (?, ?)', values: [1, null] });
  });

  it('null, booleans and arrays are values, never text', () => {
    const s = sql`UPDATE t SET a = ${null}, b = ${true} WHERE id = ANY(${['x', 'y']})`;
    assert.deepEqual(render(s, 'numbered'), { text: 'UPDATE t SET a = $1, b = $2 WHERE id = ANY($3)', values: [null, true, ['x', 'y']] });
  });

  it('the same template renders the same text each time, with that evaluation’s values', () => {
    const byId = (id: string) => sql`SELECT * FROM agents WHERE name = ${id}`;
    const a = render(byId('a'), 'question');
    const b = render(byId('b'), 'question');
    assert.equal(a.text, b.text);
    assert.deepEqual([a.values, b.values], [['a'], ['b']]);
    // The text cached for one style is not handed to the other.
    assert.equal(render(byId('c'), 'numbered').text, 'SELECT * FROM agents WHERE name = $1');
  });
});
