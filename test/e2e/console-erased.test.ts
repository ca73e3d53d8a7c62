import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { accessibilityViolations, launchBrowser } from '../helpers/browser.js';
import { asConsoleUser, erasureShown, followByKeyboard, rowLinking, textOf } from '../helpers/console-page.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { encryptRecordings, eraseThroughApi, eraseWithSqlLike, localEncryption, sealedSession } from '../helpers/encrypted-gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The console shows an erased session as erased: in the list, and on its page with who erased it, when and why, and
 * nothing to replay. Three encrypted sessions of one user (recorded, then encrypted with `store encrypt`'s library):
 * one erased by an admin through the API, one whose data key was destroyed with SQL behind the gateway's back (no
 * signed ledger entry vouches for it: flagged `erased, unsigned`), and one left alone, whose key still unwraps.
 */

describe('an erased session in the console', () => {
  let gw: TestGateway;
  let echo: EchoServer;
  let browser: Browser;
  let dir: string;
  const ids = { erased: '', unsigned: '', kept: '' };

  before(async () => {
    echo = await startEchoServer();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-console-erased-'));
    gw = await startTestGateway({
      identity: { dev: { users: { adam: ['admins', 'auditors'], ada: ['testers'] } } },
      roles: { auditors: ['auditors'], admins: ['admins'] },
      recording: { encryption: localEncryption(dir) },
      connections: { echo: { http: { url: echo.url } } },
    });
    const ada = await gw.tokenFor('ada');
    for (const which of ['erased', 'unsigned', 'kept'] as const) ids[which] = await sealedSession(gw, 'echo', ada);
    await encryptRecordings(gw);
    const adam = await gw.tokenFor('adam');
    await eraseThroughApi(gw, adam, [ids.erased], 'privacy request 99');
    // The same admin and a like reason, written into the key's row with SQL: only the signed ledger entry is missing.
    await eraseWithSqlLike(gw, adam, ids.erased, ids.unsigned, 'privacy request 100');
    // The session left alone is encrypted with a live key: it shows no badge because it is not erased, not by chance.
    const keys = await gw.gateway.recorder!.store.dataKeys(Object.values(ids));
    assert.deepEqual(
      keys.filter((k) => k.wrapped !== null).map((k) => k.owner),
      [ids.kept],
      'one live data key: the kept session',
    );
    assert.equal(keys.length, 3, 'each session has a data key');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await echo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const asAdam = (use: (page: Page) => Promise<void>) => asConsoleUser(browser, gw, 'adam', use);

  /** Goes to a session's page and waits for its heading. */
  async function openSession(page: Page, id: string): Promise<void> {
    await page.goto(new URL(`/sessions/${encodeURIComponent(id)}`, gw.url).href);
    await page.getByRole('heading', { name: `Session ${id}` }).waitFor();
  }

  /** An erased session's page: it says there is nothing to replay, has no player, and passes WCAG 2 AA. */
  async function nothingToReplay(page: Page): Promise<void> {
    await page.getByText('Nothing to replay: this session was erased.').waitFor();
    assert.equal(await page.getByRole('group', { name: 'Replay controls' }).count(), 0, 'no player');
    assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
  }

  const rowOf = (page: Page, id: string) => rowLinking(page, `/sessions/${encodeURIComponent(id)}`);

  it('lists the erased session as erased, the key destroyed outside Portcullis as erased, unsigned, with why in the tooltip, and the kept one with no badge', async () => {
    await asAdam(async (page) => {
      const erased = rowOf(page, ids.erased).locator('.flag');
      await erased.waitFor();
      // Exactly its words: no space padded inside its left edge.
      assert.equal(await erased.textContent(), 'erased');
      const erasedTip = (await erased.getAttribute('title')) ?? '';
      assert.match(erasedTip, /^erased .* by adam \(.*\): privacy request 99$/);

      const unsigned = rowOf(page, ids.unsigned).locator('.flag');
      await unsigned.waitFor();
      assert.equal(await unsigned.textContent(), 'erased, unsigned');
      const unsignedTip = (await unsigned.getAttribute('title')) ?? '';
      assert.match(unsignedTip, /^erased .* by adam \(.*\): privacy request 100\. No signed ledger entry vouches for this erasure \(verify fails it\)/);
      assert.match(unsignedTip, /its data key's row was changed outside Portcullis/);

      // The kept row came in the same answer as the two flagged ones: it is drawn, closed, and flags nothing.
      const kept = rowOf(page, ids.kept);
      await kept.getByText('closed', { exact: true }).waitFor();
      assert.equal(await kept.locator('.flag').count(), 0);
      assert.doesNotMatch(await textOf(kept), /erased/);
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
    });
  });

  it("the keyboard reaches what the unsigned badge's tooltip says: the badge is the row's next stop, and leads to the page that explains it", async () => {
    await asAdam(async (page) => {
      const row = rowOf(page, ids.unsigned);
      const badge = row.getByRole('link', { name: 'erased, unsigned', exact: true });
      await followByKeyboard(page, row, badge);
      await page.getByRole('heading', { name: `Session ${ids.unsigned}` }).waitFor();
      const { label, text } = await erasureShown(page);
      assert.equal(label, 'erased, unsigned');
      assert.match(text, /No signed ledger entry vouches for this erasure \(verify fails it\)/);
    });
  });

  it("the erased session's page says who erased it, when and why, with nothing to replay", async () => {
    await asAdam(async (page) => {
      await openSession(page, ids.erased);
      const { label, text } = await erasureShown(page);
      assert.equal(label, 'erased');
      assert.match(text, /by adam \(/);
      assert.match(text, /privacy request 99/);
      assert.match(text, /can never be read again/);
      assert.match(text, /Its hash chain and seal still verify/);
      assert.doesNotMatch(text, /unsigned|No signed ledger entry/);
      await page.getByText(/Verified: hash chain and seal intact; erased, unreadable for good/).waitFor();
      await nothingToReplay(page);
    });
  });

  it('the page of a key destroyed outside Portcullis flags it unsigned, says why, and its verification fails', async () => {
    await asAdam(async (page) => {
      await openSession(page, ids.unsigned);
      const { label, text } = await erasureShown(page);
      assert.equal(label, 'erased, unsigned');
      assert.match(text, /by adam \(.*privacy request 100/);
      assert.match(text, /No signed ledger entry vouches for this erasure \(verify fails it\): its data key's row was changed outside Portcullis/);
      assert.doesNotMatch(text, /still verify/, 'it does not: verify fails it');
      await page.getByText(/^Verification FAILED/).waitFor();
      await nothingToReplay(page);
    });
  });

  it("the kept session's page has no erasure, verifies, and replays", async () => {
    await asAdam(async (page) => {
      await openSession(page, ids.kept);
      await page.getByRole('group', { name: 'Replay controls' }).waitFor();
      await page.getByText(/^Verified: hash chain and seal intact \(/).waitFor();
      // Its messages decrypt: the client's notification, as it sent it, is on the timeline.
      await page.getByText('"notifications/initialized"', { exact: true }).waitFor();
      assert.equal(await page.locator('dd.erased').count(), 0);
      assert.equal(await page.getByText('Erased', { exact: true }).count(), 0);
      assert.equal(await page.getByText(/Nothing to replay/).count(), 0);
    });
  });
});
