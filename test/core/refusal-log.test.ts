import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logRefusal, methodOf, quotedElided } from '../../src/core/refusal-log.js';
import { createLogger } from '../../src/log.js';
import { CapturedLog } from '../helpers/gateway.js';

describe('refusal log lines', () => {
  it('carry refusal: true and the four fields once, even when the logger is bound to some of them', () => {
    const written: string[] = [];
    const log = createLogger('info', { write: (line: string) => written.push(line) > 0 } as unknown as NodeJS.WritableStream, undefined, 'json');
    const bound = log.child({ connection: 'files', session: 's1' });
    logRefusal(bound, { principal: 'alice', connection: 'files', method: 'tools/call', reason: 'no' }, 'request refused', { stage: 'guard' });
    logRefusal(bound, { principal: 'alice', connection: 'other', method: 'tools/call', reason: 'no' }, 'request refused', {}, 'warn');
    const [first, second] = written.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      [first!.refusal, first!.principal, first!.connection, first!.method, first!.reason, first!.stage, first!.level],
      [true, 'alice', 'files', 'tools/call', 'no', 'guard', 30],
    );
    assert.equal(written[0]!.split('"connection"').length, 2, 'a field the logger is bound to with the same value is not repeated');
    assert.equal(second!.level, 40);
    assert.equal(second!.connection, 'other', 'a field bound to another value is written (the last one wins)');
  });

  it('is not built below the level', () => {
    const log = new CapturedLog('warn');
    logRefusal(log.logger, { principal: 'p', connection: 'c', method: 'm', reason: 'r' }, 'x');
    assert.equal(log.lines.length, 0);
  });

  it('the method: the first message with one, else the HTTP method', () => {
    assert.equal(
      methodOf(
        [
          { jsonrpc: '2.0', id: 1, result: {} },
          { jsonrpc: '2.0', id: 2, method: 'tools/list' },
        ],
        { method: 'POST' },
      ),
      'tools/list',
    );
    assert.equal(methodOf([], { method: 'GET' }), 'HTTP GET');
  });

  it('a reason quoting what the client sent loses the quoted text, however many quotes it holds', () => {
    const token = 'sk-live-0123456789abcdef';
    for (const body of [`{"token": ${token}`, `x"${token}`, `"${token}`]) {
      let message = '';
      try {
        JSON.parse(body);
      } catch (err) {
        message = `the body is not valid JSON: ${(err as Error).message}`;
      }
      const shown = quotedElided(message);
      assert.ok(!shown.includes(token.slice(0, 8)), shown);
      assert.match(shown, /^the body is not valid JSON: /);
    }
    assert.equal(quotedElided('Method not found: bogus/x'), 'Method not found: bogus/x');
    assert.equal(quotedElided('x'.repeat(400)).length, 301);
  });
});
