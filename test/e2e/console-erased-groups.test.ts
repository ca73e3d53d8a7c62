import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import { callApi } from '../helpers/api.js';
import { accessibilityViolations, launchBrowser } from '../helpers/browser.js';
import {
  asConsoleUser,
  erasureShown,
  followByKeyboard,
  groupsView as groupsViewOf,
  openSessionPage,
  rowLinking,
  sessionHref,
  textOf,
} from '../helpers/console-page.js';
import type { TestGateway } from '../helpers/gateway.js';
import { startUngroupableGateway, type UngroupableGateway } from '../helpers/ungroupable-gateway.js';

/**
 * The console's grouped view of modern (2026-07-28) exchanges over erased recordings. An erased pooled session's
 * exchanges cannot be grouped (grouping reads payloads), so the view lists it in place of its groups, flagged as the
 * sessions list flags it; a group with an erased session of its user and connection near it may be partly erased, and
 * says so; a group left alone says nothing. The gateway of ungroupable-gateway.ts: ada's trace over two pooled
 * sessions, the first erased by an admin; eve's one session erased; ned's data key destroyed with SQL (no signed ledger
 * entry vouches for it); kim's kept (and olga's and lou's, unreadable here: console-unreadable-groups.test.ts).
 */

describe('erased modern exchanges in the grouped view', () => {
  let fixture: UngroupableGateway;
  let gw: TestGateway;
  let browser: Browser;
  let sessions: UngroupableGateway['sessions'];
  let groupIds: UngroupableGateway['groupIds'];
  let adam = '';

  before(async () => {
    fixture = await startUngroupableGateway();
    ({ gw, sessions, groupIds, adam } = fixture);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await fixture?.stop();
  });

  const listed = (token?: string) => fixture.listed(token);
  const asAdam = (use: (page: Page) => Promise<void>) => asConsoleUser(browser, gw, 'adam', use);
  const href = sessionHref;
  const groupsView = (page: Page) => groupsViewOf(page, gw);
  const open = (page: Page, id: string) => openSessionPage(page, gw, id);

  it('lists the erased sessions in place of their groups, flagged erased or erased, unsigned; the group near one may be partly erased; the kept group nothing', async () => {
    await asAdam(async (page) => {
      await groupsView(page);
      const eve = rowLinking(page, href(sessions.eve));
      assert.equal(await eve.locator('.flag').textContent(), 'erased', 'exactly its words: no space padded inside it');
      assert.match((await eve.locator('.flag').getAttribute('title')) ?? '', /^erased .* by adam \(.*\): privacy request 7$/);
      assert.match(await textOf(eve), /not grouped: the exchanges of the pooled session opened then were erased/);

      const ned = rowLinking(page, href(sessions.ned));
      assert.equal(await ned.locator('.flag').textContent(), 'erased, unsigned');
      assert.match(
        (await ned.locator('.flag').getAttribute('title')) ?? '',
        /privacy request 8\. No signed ledger entry vouches for this erasure \(verify fails it\)/,
      );

      const ada = rowLinking(page, href(groupIds.adaAfter));
      assert.equal(await ada.locator('.flag').textContent(), 'may be partly erased');
      const adaTip = (await ada.locator('.flag').getAttribute('title')) ?? '';
      assert.match(adaTip, /^Exchanges of this user on this connection, recorded within the idle gap of this group's, were erased/);
      assert.ok(adaTip.includes(`Session ${sessions.ada[0]}: erased `) && adaTip.includes('by adam ('), adaTip);
      assert.equal(await rowLinking(page, href(sessions.ada[0]!)).count(), 1, "ada's erased session is listed too");

      // The kept row came in the same answer as the flagged ones: it is drawn, and flags nothing.
      const kim = rowLinking(page, href(groupIds.kim));
      await kim.waitFor();
      assert.equal(await kim.locator('.flag').count(), 0);
      assert.doesNotMatch(await textOf(kim), /erased/);
      assert.equal(await rowLinking(page, href(groupIds.eve)).count(), 0, "eve's group is gone: it cannot be told apart");
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
    });
  });

  it("the keyboard reaches the partly erased group's explanation: its badge is the row's next stop, and leads to the group's page", async () => {
    await asAdam(async (page) => {
      await groupsView(page);
      const row = rowLinking(page, href(groupIds.adaAfter));
      await followByKeyboard(page, row, row.getByRole('link', { name: 'may be partly erased', exact: true }));
      await page.getByRole('heading', { name: `Session ${groupIds.adaAfter}` }).waitFor();
      const { label, text } = await erasureShown(page);
      assert.equal(label, 'may be partly erased');
      assert.match(text, /those that were part of this group, if any, can never be read, and which were cannot be told/);
      assert.match(text, new RegExp(`${sessions.ada[0]} erased .* by adam \\(.*privacy request 7`));
      await page.getByRole('link', { name: sessions.ada[0]!, exact: true }).waitFor();
      // What is left of it is readable: its own exchange replays, and its session verifies.
      await page.getByText(/ada 3/).first().waitFor();
      await page.getByText(/^Verified: hash chain and seal intact \(/).waitFor();
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
    });
  });

  it("an erased group's page (its id from before) says who erased its session, when and why, where the rest may be, with nothing to replay", async () => {
    await asAdam(async (page) => {
      await open(page, groupIds.eve);
      const { label, text } = await erasureShown(page);
      assert.equal(label, 'erased');
      assert.match(text, /by adam \(.*privacy request 7/);
      assert.match(text, /Its hash chain and seal still verify/);
      assert.match(text, /this group cannot be told apart/);
      await page.getByRole('link', { name: sessions.eve, exact: true }).waitFor();
      await page.getByText(/Verified: hash chain and seal intact; erased, unreadable for good/).waitFor();
      await page.getByText("Nothing to replay: this group's session was erased.").waitFor();
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');

      // ada's group as it was named before: its first session is erased; the rest of it is one link away.
      await open(page, groupIds.adaBefore);
      assert.equal((await erasureShown(page)).label, 'erased');
      await page.getByRole('link', { name: 'the groups of this user on this connection' }).click();
      await rowLinking(page, href(groupIds.adaAfter)).waitFor();
    });
  });

  it('the page of a group whose key was destroyed outside Portcullis flags it unsigned, says why, and its verification fails', async () => {
    await asAdam(async (page) => {
      await open(page, groupIds.ned);
      const { label, text } = await erasureShown(page);
      assert.equal(label, 'erased, unsigned');
      assert.match(text, /No signed ledger entry vouches for this erasure \(verify fails it\): its data key's row was changed outside Portcullis/);
      assert.doesNotMatch(text, /still verify/, 'it does not: verify fails it');
      await page.getByText(/^Verification FAILED/).waitFor();
    });
  });

  it("the kept group's page has no erasure, verifies, and shows its exchange", async () => {
    await asAdam(async (page) => {
      await open(page, groupIds.kim);
      await page.getByText(/^Verified: hash chain and seal intact \(/).waitFor();
      await page.getByText(/kim 2/).first().waitFor();
      assert.equal(await page.locator('dd.erased').count(), 0);
      assert.equal(await page.getByText('Erased', { exact: true }).count(), 0);
    });
  });

  it('a user who sees only their own is told of no erased session (none can be attested as theirs)', async () => {
    const ada = await gw.tokenFor('ada');
    const own = await listed(ada);
    assert.deepEqual([own.erased, own.unreadable], [[], []]);
    assert.deepEqual(
      own.groups.map((g) => [g.id, g.erasedNearby]),
      [[groupIds.adaAfter, []]],
    );
    const one = await callApi<{ erasedNearby: unknown[] }>(gw.url, ada, 'GET', href(groupIds.adaAfter).replace('/sessions/', '/api/sessions/'));
    assert.deepEqual(one.body.erasedNearby, []);
    const asAuditor = await callApi<{ erasedNearby: Array<{ session: string; erased: ErasureFacts }> }>(
      gw.url,
      adam,
      'GET',
      href(groupIds.adaAfter).replace('/sessions/', '/api/sessions/'),
    );
    assert.deepEqual(
      asAuditor.body.erasedNearby.map((e) => [e.session, e.erased.reason, e.erased.vouched]),
      [[sessions.ada[0], 'privacy request 7', true]],
    );
  });
});
