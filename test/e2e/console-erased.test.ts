import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import { callApi } from '../helpers/api.js';
import { accessibilityViolations, launchBrowser, pageProblems } from '../helpers/browser.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { encryptRecordings, localEncryption, sealedSession } from '../helpers/encrypted-gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { storeSql } from '../helpers/stores.js';

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
    const r = await callApi<{ erased: Array<{ session: string }> }>(gw.url, adam, 'POST', '/api/sessions/erase', {
      sessions: [ids.erased],
      reason: 'privacy request 99',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      r.body.erased.map((e) => e.session),
      [ids.erased],
    );
    // The same admin and a like reason, written into the key's row with SQL: only the signed ledger entry is missing.
    const { body } = await callApi<{ session: { erased: ErasureFacts } }>(gw.url, adam, 'GET', `/api/sessions/${ids.erased}`);
    await storeSql({ url: `sqlite:${join(gw.dataDir, 'portcullis.db')}` }, 'sqlite')(
      'UPDATE data_keys SET wrapped = NULL, erased_at_us = ?, erased_by = ?, erase_reason = ? WHERE owner = ? AND wrapped IS NOT NULL',
      body.session.erased.erasedAtUs,
      body.session.erased.by,
      'privacy request 100',
      ids.unsigned,
    );
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

  /**
   * A page signed in as adam (admin and auditor) on the sessions list, for `use`; then no page error or CSP refusal, and
   * the page closed with its context.
   */
  async function asAdam(use: (page: Page) => Promise<void>): Promise<void> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const page = await context.newPage();
      const problems = pageProblems(page);
      await page.goto(gw.gateway.consoleUrl!);
      await page.getByRole('button', { name: 'Sign in as adam', exact: true }).click();
      await page.getByRole('heading', { name: 'Sessions', level: 1 }).waitFor();
      await use(page);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  }

  /** Goes to a session's page and waits for its heading. */
  async function openSession(page: Page, id: string): Promise<void> {
    await page.goto(new URL(`/sessions/${encodeURIComponent(id)}`, gw.url).href);
    await page.getByRole('heading', { name: `Session ${id}` }).waitFor();
  }

  /** A session page's Erased entry, once drawn: its badge, and all it says. */
  async function erasureShown(page: Page): Promise<{ label: string; text: string }> {
    const erasure = page.locator('dd.erased');
    await erasure.waitFor();
    return { label: await textOf(erasure.locator('.flag').first()), text: await textOf(erasure) };
  }

  /** An erased session's page: it says there is nothing to replay, has no player, and passes WCAG 2 AA. */
  async function nothingToReplay(page: Page): Promise<void> {
    await page.getByText('Nothing to replay: this session was erased.').waitFor();
    assert.equal(await page.getByRole('group', { name: 'Replay controls' }).count(), 0, 'no player');
    assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
  }

  /** An element's text, all of it (hidden parts too), trimmed. */
  const textOf = async (l: Locator) => ((await l.textContent()) ?? '').trim();
  const rowOf = (page: Page, id: string) => page.getByRole('row').filter({ has: page.locator(`a[href="/sessions/${encodeURIComponent(id)}"]`) });

  it('lists the erased session as erased, the key destroyed outside Portcullis as erased, unsigned, with why in the tooltip, and the kept one with no badge', async () => {
    await asAdam(async (page) => {
      const erased = rowOf(page, ids.erased).locator('.flag');
      await erased.waitFor();
      assert.equal(await textOf(erased), 'erased');
      const erasedTip = (await erased.getAttribute('title')) ?? '';
      assert.match(erasedTip, /^erased .* by adam \(.*\): privacy request 99$/);

      const unsigned = rowOf(page, ids.unsigned).locator('.flag');
      await unsigned.waitFor();
      assert.equal(await textOf(unsigned), 'erased, unsigned');
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
