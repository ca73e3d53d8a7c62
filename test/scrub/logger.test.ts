import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger, resolveFormat } from '../../src/log.js';
import { CredentialScrubber } from '../../src/scrub/credential-scrubber.js';
import { assertNoCredential } from '../helpers/credential-spellings.js';

/** An in-memory destination that says it is (or is not) a terminal, as process.stderr does. */
function memory(isTTY: boolean): { destination: NodeJS.WritableStream & { isTTY: boolean }; text: () => string } {
  const chunks: string[] = [];
  const destination = { isTTY, write: (chunk: string) => chunks.push(chunk) > 0 } as unknown as NodeJS.WritableStream & { isTTY: boolean };
  return { destination, text: () => chunks.join('') };
}

/** The process's log scrubs injected credentials from every line it writes, whatever field carries them. */
describe('the log', () => {
  it('writes no injected credential, in any spelling, and stays JSON lines', () => {
    const value = 'log-sekr3t/+=&"value';
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-log-'));
    const fd = openSync(join(dir, 'log'), 'w');
    try {
      const log = createLogger('info', { fd }, new CredentialScrubber([{ name: 'c.env.KEY', value }]));
      log.info({ detail: `raw ${value}`, nested: { b64: Buffer.from(`x${value}`).toString('base64') } }, `upstream said ${encodeURIComponent(value)}`);
      log.warn({ err: new Error(`boom ${value}`).message }, 'upstream transport problem');
      log.flush();
      const text = readFileSync(join(dir, 'log'), 'utf8');
      assertNoCredential(text, [value], 'the log');
      const lines = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(lines.length, 2);
      assert.equal(lines[0]!.detail, 'raw [REDACTED:credential:c.env.KEY]');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is pretty for a person at a terminal, and scrubbed and redacted the same as JSON', () => {
    const value = 'pretty-sekr3t/+=&"value';
    const out = memory(true);
    const log = createLogger('info', out.destination, new CredentialScrubber([{ name: 'c.env.KEY', value }]), 'auto');
    log.info({ connection: 'files', detail: `raw ${value}`, headers: { authorization: 'Bearer not-for-logs' }, token: 'tok-not-for-logs' }, 'request refused');
    const text = out.text().replace(/\x1b\[[0-9;]*m/g, '');
    assert.doesNotMatch(text, /^\{/m, 'no JSON line on a terminal');
    assert.equal(text.trim().split('\n').length, 1, 'one line per entry');
    assert.match(text, /INFO.*request refused/);
    assert.match(text, /"connection":"files"/);
    assert.match(text, /\[REDACTED:credential:c\.env\.KEY\]/);
    assert.match(text, /"authorization":"\[redacted\]"/);
    assert.doesNotMatch(text, /not-for-logs/);
    assertNoCredential(text, [value], 'the pretty log');
  });

  it('is JSON lines when the destination is no terminal, or when asked for on one', () => {
    for (const [isTTY, format] of [
      [false, 'auto'],
      [true, 'json'],
      [false, 'json'],
    ] as const) {
      const out = memory(isTTY);
      createLogger('info', out.destination, undefined, format).info({ connection: 'files' }, 'hello');
      const line = JSON.parse(out.text()) as Record<string, unknown>;
      assert.equal(line.msg, 'hello', `${format} on ${isTTY ? 'a terminal' : 'a pipe'}`);
    }
    const forced = memory(false);
    createLogger('info', forced.destination, undefined, 'pretty').info('hello');
    assert.match(forced.text(), /INFO.*hello/);
    assert.doesNotMatch(forced.text(), /\x1b\[/, 'no colours where there is no terminal');
    assert.equal(resolveFormat('auto', { fd: 2, isTTY: true }), 'pretty');
    assert.equal(resolveFormat('auto', { fd: 2, isTTY: false }), 'json');
  });
});
