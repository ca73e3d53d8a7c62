import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { CredentialScrubber } from '../../src/scrub/credential-scrubber.js';
import { assertNoCredential } from '../helpers/credential-spellings.js';

/** The process's log scrubs injected credentials from every line it writes, whatever field carries them. */
describe('the log', () => {
  it('writes no injected credential, in any spelling, and stays JSON lines', () => {
    const value = 'log-sekr3t/+=&"value';
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-log-'));
    const fd = openSync(join(dir, 'log'), 'w');
    try {
      const log = createLogger('info', { fd } as unknown as NodeJS.WritableStream, new CredentialScrubber([{ name: 'c.env.KEY', value }]));
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
});
