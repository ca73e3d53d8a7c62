import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { callApi } from '../helpers/api.js';
import { accessibilityViolations, launchBrowser, pageProblems } from '../helpers/browser.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { encryptRecordings, localEncryption, sealedSession } from '../helpers/encrypted-gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The console shows an erased session as erased: in the list, and on its page with who erased it, when and why, and
 * nothing to replay. (The session is recorded, encrypted with `store encrypt`'s library, then erased by an admin.)
 */

describe('an erased session in the console', () => {
  let gw: TestGateway;
  let echo: EchoServer;
  let browser: Browser;
  let dir: string;
  let erased: string;

  before(async () => {
    echo = await startEchoServer();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-console-erased-'));
    gw = await startTestGateway({
      identity: { dev: { users: { adam: ['admins', 'auditors'], ada: ['testers'] } } },
      roles: { auditors: ['auditors'], admins: ['admins'] },
      recording: { encryption: localEncryption(dir) },
      connections: { echo: { http: { url: echo.url } } },
    });
    erased = await sealedSession(gw, 'echo', await gw.tokenFor('ada'));
    await encryptRecordings(gw);
    const r = await callApi(gw.url, await gw.tokenFor('adam'), 'POST', '/api/sessions/erase', { sessions: [erased], reason: 'privacy request 99' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await echo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists it as erased, and its page says who erased it, when and why, with nothing to replay', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const page = await context.newPage();
      const problems = pageProblems(page);
      await page.goto(gw.gateway.consoleUrl!);
      await page.getByRole('button', { name: 'Sign in as adam', exact: true }).click();
      await page.getByRole('heading', { name: 'Sessions', level: 1 }).waitFor();
      const row = page.getByRole('row').filter({ hasText: 'ada' }).first();
      await row.getByText('erased').waitFor();

      await page.goto(new URL(`/sessions/${encodeURIComponent(erased)}`, gw.url).href);
      await page.getByRole('heading', { name: `Session ${erased}` }).waitFor();
      const erasure = page.locator('dd.erased');
      await erasure.waitFor();
      const text = await erasure.innerText();
      assert.match(text, /by adam \(/);
      assert.match(text, /privacy request 99/);
      assert.match(text, /can never be read again/);
      await page.getByText('Nothing to replay: this session was erased.').waitFor();
      await page.getByText(/Verified: hash chain and seal intact/).waitFor();
      assert.equal(await page.getByRole('group', { name: 'Replay controls' }).count(), 0, 'no player');
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
