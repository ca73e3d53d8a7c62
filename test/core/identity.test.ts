import assert from 'node:assert/strict';
import { test } from 'node:test';
import { samePrincipal } from '../../src/core/identity.js';

test('the same principal is the same subject from the same issuer, whatever the groups or names', () => {
  const a = { subject: 'alice', issuer: 'https://idp.example', groups: ['dev'] };
  assert.equal(samePrincipal(a, { subject: 'alice', issuer: 'https://idp.example', groups: [], name: 'Alice' }), true);
  assert.equal(samePrincipal(a, { subject: 'alice', issuer: 'https://other.example', groups: ['dev'] }), false);
  assert.equal(samePrincipal(a, { subject: 'bob', issuer: 'https://idp.example', groups: ['dev'] }), false);
});
