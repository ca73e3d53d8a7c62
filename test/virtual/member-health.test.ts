import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemberHealthBoard, type MemberState } from '../../src/virtual/member-health.js';
import { CapturedLog } from '../helpers/gateway.js';

/** The gateway's view of virtual servers' members: transitions logged once, the latest report winning. */

describe('MemberHealthBoard', () => {
  const clock = () => {
    let t = Date.parse('2026-12-05T10:00:00Z');
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };
  const warnings = (log: CapturedLog) => log.lines.filter((l) => l.level === 40);

  it('warns once per transition to down, naming the server, the member and why; a retry failing again is no new warning', () => {
    const log = new CapturedLog();
    const time = clock();
    const health = new MemberHealthBoard(log.logger, time.now);
    health.report('toolbox', 'files', { up: true }, 's1');
    assert.equal(warnings(log).length, 0, 'a member found up is no warning');
    time.advance(1000);
    health.report('toolbox', 'files', { up: false, reason: 'exited with code 3' }, 's1');
    time.advance(1000);
    health.report('toolbox', 'files', { up: false, reason: 'did not answer initialize within 1s' }, 's1');
    assert.equal(warnings(log).length, 1);
    assert.deepEqual(
      { server: warnings(log)[0]!.virtualServer, member: warnings(log)[0]!.member, reason: warnings(log)[0]!.reason },
      { server: 'toolbox', member: 'files', reason: 'exited with code 3' },
    );
    assert.match(String(warnings(log)[0]!.msg), /member 'files' of virtual server 'toolbox' is left out: exited with code 3/);
    assert.deepEqual(health.of('toolbox'), [
      { member: 'files', up: false, reason: 'did not answer initialize within 1s', since: Date.parse('2026-12-05T10:00:01Z'), sessions: 1 },
    ]);
    assert.equal(health.downCount('toolbox'), 1);
  });

  it('says when a member is back, and warns again when it goes down again', () => {
    const log = new CapturedLog();
    const time = clock();
    const health = new MemberHealthBoard(log.logger, time.now);
    health.report('toolbox', 'files', { up: false, reason: 'killed' }, 's1');
    time.advance(5000);
    health.report('toolbox', 'files', { up: true }, 's1');
    assert.deepEqual(health.of('toolbox'), [{ member: 'files', up: true, since: Date.parse('2026-12-05T10:00:05Z'), sessions: 1 }]);
    assert.equal(health.downCount('toolbox'), 0);
    assert.ok(log.lines.some((l) => l.level === 30 && /member 'files' of virtual server 'toolbox' is back/.test(String(l.msg))));
    health.report('toolbox', 'files', { up: false, reason: 'killed again' }, 's1');
    assert.equal(warnings(log).length, 2);
  });

  it('keeps servers and members apart, in the order first reported; a server never reported has none', () => {
    const health = new MemberHealthBoard(new CapturedLog().logger);
    health.report('toolbox', 'b', { up: true }, 's1');
    health.report('toolbox', 'a', { up: false, reason: 'hung' }, 's1');
    health.report('other', 'a', { up: true }, 's2');
    assert.deepEqual(
      health.of('toolbox').map((s) => [s.member, s.up]),
      [
        ['b', true],
        ['a', false],
      ],
    );
    assert.deepEqual(
      health.of('other').map((s) => [s.member, s.up]),
      [['a', true]],
    );
    assert.deepEqual(health.of('nowhere'), []);
    assert.equal(health.downCount('nowhere'), 0);
  });

  it('keeps a member as last seen once no session uses it, but no longer counts it down', () => {
    const log = new CapturedLog();
    const health = new MemberHealthBoard(log.logger);
    health.report('toolbox', 'files', { up: false, reason: 'exited with code 3' }, 's1');
    health.report('toolbox', 'files', { up: false, reason: 'exited with code 3' }, 's2');
    health.report('toolbox', 'everything', { up: true }, 's2');
    assert.deepEqual(
      health.of('toolbox').map((s) => [s.member, s.sessions]),
      [
        ['files', 2],
        ['everything', 1],
      ],
    );
    health.ended('toolbox', 's1');
    assert.equal(health.downCount('toolbox'), 1, 'another session still misses it');
    health.ended('toolbox', 's2');
    health.ended('other', 's3');
    assert.equal(health.downCount('toolbox'), 0);
    assert.deepEqual(
      health.of('toolbox').map((s) => [s.member, s.up, s.reason, s.sessions]),
      [
        ['files', false, 'exited with code 3', 0],
        ['everything', true, undefined, 0],
      ],
    );
    // A new session that finds it down again: counted again, but it never came back, so no new warning.
    health.report('toolbox', 'files', { up: false, reason: 'exited with code 3' }, 's4');
    assert.equal(health.downCount('toolbox'), 1);
    assert.equal(warnings(log).length, 1);
  });

  it('tells listeners each transition (not repeats) until they stop listening; a failing listener harms no other', () => {
    const log = new CapturedLog();
    const health = new MemberHealthBoard(log.logger);
    const heard: Array<[string, MemberState]> = [];
    health.onChange(() => {
      throw new Error('a broken listener');
    });
    const stop = health.onChange((server, status) => heard.push([server, status]));
    health.report('toolbox', 'files', { up: true }, 's1');
    health.report('toolbox', 'files', { up: true }, 's1');
    health.report('toolbox', 'files', { up: false, reason: 'gone' }, 's1');
    health.report('toolbox', 'files', { up: false, reason: 'still gone' }, 's1');
    stop();
    health.report('toolbox', 'files', { up: true }, 's1');
    assert.deepEqual(
      heard.map(([server, s]) => [server, s.member, s.up, s.reason]),
      [
        ['toolbox', 'files', true, undefined],
        ['toolbox', 'files', false, 'gone'],
      ],
    );
    assert.ok(log.lines.some((l) => l.level === 50 && l.msg === 'a member health listener failed'));
  });
});
