import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotificationSigner, notificationBody } from '../../src/cluster/notification-signer.js';

/**
 * cluster.secret as a list (a rotation): the change notifications signed under the first secret and taken under any
 * (the hop's signature: tokens.test.ts).
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
