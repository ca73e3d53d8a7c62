import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureReport } from '../../src/audit/failure-report.js';
import { CapturedLog } from '../helpers/gateway.js';

test('a failure retried for an hour is logged a handful of times, with backoff, then its recovery once', () => {
  const log = new CapturedLog();
  let now = 0;
  const report = new FailureReport(log.logger, 'audit sink siem', { sink: 'siem' }, 60_000, 3_600_000, () => now);
  // A retry a second for an hour.
  for (; now < 3_600_000; now += 1000) report.failed(new Error('answered 503'));
  const lines = log.lines.map((l) => [Math.round(Number(l.failingForS ?? 0) / 60), l.msg]);
  assert.deepEqual(lines, [
    [0, 'audit sink siem failed; retrying with backoff (nothing is lost: the events wait in the store)'],
    [1, 'audit sink siem still failing; retrying with backoff'],
    [3, 'audit sink siem still failing; retrying with backoff'],
    [7, 'audit sink siem still failing; retrying with backoff'],
    [15, 'audit sink siem still failing; retrying with backoff'],
    [31, 'audit sink siem still failing; retrying with backoff'],
  ]);
  assert.equal(report.failures, 3600);
  assert.equal(report.failingSince, 0);
  report.succeeded();
  report.succeeded();
  assert.equal(log.lines.filter((l) => l.msg === 'audit sink siem works again').length, 1);
  assert.equal(log.lines.at(-1)?.attempts, 3600);
  assert.equal(report.failingSince, undefined);
});
