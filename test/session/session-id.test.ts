import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newSessionId } from '../../src/session/registry.js';

describe('session ids', () => {
  it('carry 128 random bits, URL-safe, and never start with "-" (a command line would take them for an option)', () => {
    const ids = Array.from({ length: 5000 }, newSessionId);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
