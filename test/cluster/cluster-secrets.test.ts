import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { HopRefusalLog } from '../../src/cluster/hop-refusal.js';
import { NotificationSigner, notificationBody } from '../../src/cluster/notification-signer.js';

/**
 * cluster.secret as a list (a rotation): the change notifications signed under the first secret and taken under any
 * (the hop's signature: tokens.test.ts), and the error a replica logs when a live one refuses its hops.
 */

describe('change notifications under a rotating cluster.secret', () => {
  const [s1, s2] = ['notify-one-'.padEnd(32, '1'), 'notify-two-'.padEnd(32, '2')];
  const steps = [[s1], [s1, s2], [s2, s1], [s2]];

  it('are signed under the first secret and taken under any: each step of [s1], [s1, s2], [s2, s1], [s2] takes the next', () => {
    for (const [i, signer] of steps.entries()) {
      for (const [j, verifier] of steps.entries()) {
        const opened = new NotificationSigner(verifier).open(new NotificationSigner(signer).sign(notificationBody('gw-a', [['review', 'r1']], true)));
        // Neighbouring steps (what a rolling restart puts side by side) always agree; [s1] and [s2] never do.
        if (Math.abs(i - j) <= 1) assert.ok('body' in opened, `${i} signs, ${j} opens`);
        if (Math.abs(i - j) === 3) assert.deepEqual(opened, { refused: 'bad signature' }, `${i} signs, ${j} opens`);
      }
    }
  });

  it('a single secret is a list of one; an empty list is refused', () => {
    const signed = new NotificationSigner(s1).sign(notificationBody('gw-a', [['pin', 'c']], true));
    assert.ok('body' in new NotificationSigner([s2, s1]).open(signed));
    assert.throws(() => new NotificationSigner([]), /at least one secret/);
  });
});

describe('the error logged when a live replica refuses the hop as unauthenticated', () => {
  /** A HopRefusalLog on a clock the test moves, and the lines it wrote. */
  function refusalLog() {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const clock = { now: 1_000_000 };
    const log = new HopRefusalLog(pino({ level: 'info' }, sink), 60_000, () => clock.now);
    return { log, lines, clock };
  }

  it('is said once per refusing replica per minute, naming the likely cause, with the refusals unsaid since', () => {
    const { log, lines, clock } = refusalLog();
    for (let i = 0; i < 5; i++) log.refused('gw-a', 'http://10.0.0.1:8080', 'bad-signature');
    log.refused('gw-b', 'http://10.0.0.2:8080', 'clock-skew');
    assert.equal(lines.length, 2, 'one line per replica, not per request');
    assert.equal(lines[0]!.level, 50, 'an error');
    assert.equal(lines[0]!.owner, 'gw-a');
    assert.match(lines[0]!.msg as string, /bad-signature.*cluster\.secret/);
    assert.match(lines[1]!.msg as string, /clock-skew.*NTP/);
    clock.now += 59_999;
    log.refused('gw-a', 'http://10.0.0.1:8080', 'bad-signature');
    assert.equal(lines.length, 2, 'still within the minute');
    clock.now += 1;
    log.refused('gw-a', 'http://10.0.0.1:8080', 'bad-signature');
    assert.equal(lines.length, 3);
    assert.equal(lines[2]!.refusedUnsaid, 5, 'the four after the first line, and the one within the minute');
    for (const cause of ['no-secret', 'malformed', 'unspecified'] as const) {
      clock.now += 60_000;
      log.refused('gw-c', 'http://10.0.0.3:8080', cause);
      assert.match(lines.at(-1)!.msg as string, new RegExp(cause));
    }
  });
});
