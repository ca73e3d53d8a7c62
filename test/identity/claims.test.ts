import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimAt, idpGroups, mapRoles } from '../../src/identity/claims.js';

describe('groups from token claims', () => {
  it('reads a plain claim, a claim whose name has a colon or dots, and a nested path', () => {
    const payload = { groups: ['a'], 'cognito:groups': ['b'], 'https://example.com/groups': ['c'], realm_access: { roles: ['d'] } };
    assert.deepEqual(claimAt(payload, 'groups'), ['a']);
    assert.deepEqual(claimAt(payload, 'cognito:groups'), ['b']);
    assert.deepEqual(claimAt(payload, 'https://example.com/groups'), ['c']);
    assert.deepEqual(claimAt(payload, 'realm_access.roles'), ['d']);
    assert.equal(claimAt(payload, 'realm_access.missing'), undefined);
    assert.equal(claimAt(payload, 'groups.length'), undefined, 'a path never reaches into an array');
    assert.equal(claimAt({}, '__proto__.polluted'), undefined, 'inherited properties are not claims');
  });

  it('splits a space-separated string claim', () => {
    assert.deepEqual(idpGroups({ scp: 'eng  sre ops' }, 'scp').groups, ['eng', 'sre', 'ops']);
  });

  it('a missing claim is no groups, without a problem', () => {
    assert.deepEqual(idpGroups({}, 'groups'), { groups: [] });
  });

  for (const [what, value] of [
    ['an object', { admin: true }],
    ['a number', 42],
    ['an array with a non-string', ['eng', 1]],
    ['null', null],
  ] as const) {
    it(`a claim that is ${what} is no groups, with a problem to record (fail closed)`, () => {
      const reading = idpGroups({ groups: value as never }, 'groups');
      assert.deepEqual(reading.groups, []);
      assert.match(reading.problem ?? '', /not a list of strings/);
    });
  }

  it('maps IdP groups to Portcullis roles, dropping unmapped groups when a map is set', () => {
    const roles = { engineers: ['okta-eng', 'okta-contractors'], approvers: ['okta-leads'] };
    assert.deepEqual(mapRoles(['okta-eng', 'okta-marketing'], roles), ['engineers']);
    assert.deepEqual(mapRoles(['okta-leads', 'okta-contractors'], roles).sort(), ['approvers', 'engineers']);
    assert.deepEqual(mapRoles(['okta-marketing'], roles), []);
    assert.deepEqual(mapRoles(['x', 'x', 'y'], undefined), ['x', 'y']);
  });
});
