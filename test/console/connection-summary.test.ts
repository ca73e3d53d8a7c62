import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memberSummaries } from '../../src/console/connection-summary.js';
import { MemberHealthBoard } from '../../src/virtual/member-health.js';
import { CapturedLog } from '../helpers/gateway.js';

/** A virtual server's members on the connections page: the configured order, each with what the gateway last saw. */

describe('memberSummaries', () => {
  it('lists every configured member in order: up, down with why and since when, or unknown before any session opened it', () => {
    const health = new MemberHealthBoard(new CapturedLog().logger, () => Date.parse('2026-12-05T10:00:00Z'));
    health.report('toolbox', 'files', { up: false, reason: 'exited with code 3' }, 's1');
    health.report('toolbox', 'everything', { up: true }, 's1');
    health.report('other', 'tickets', { up: false, reason: 'not this server' }, 's2');
    assert.deepEqual(memberSummaries(['everything', 'files', 'tickets'], health.of('toolbox')), [
      { connection: 'everything', state: 'up', reason: null, since: '2026-12-05T10:00:00.000Z', sessions: 1 },
      { connection: 'files', state: 'down', reason: 'exited with code 3', since: '2026-12-05T10:00:00.000Z', sessions: 1 },
      { connection: 'tickets', state: 'unknown', reason: null, since: null, sessions: 0 },
    ]);
  });

  it('leaves out what the gateway saw of a member no longer configured', () => {
    const health = new MemberHealthBoard(new CapturedLog().logger);
    health.report('toolbox', 'removed', { up: false, reason: 'gone' }, 's1');
    assert.deepEqual(memberSummaries([], health.of('toolbox')), []);
  });
});
