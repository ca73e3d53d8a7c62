import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { accessibilityViolations, launchBrowser } from '../helpers/browser.js';
import { asConsoleUser, followByKeyboard, groupsView, openSessionPage, rowLinking, sessionHref as href, textOf } from '../helpers/console-page.js';
import type { TestGateway } from '../helpers/gateway.js';
import { startUngroupableGateway, type UngroupableGateway } from '../helpers/ungroupable-gateway.js';

/**
 * The console's grouped view of modern (2026-07-28) exchanges beside pooled sessions this gateway cannot read though
 * they were not erased: olga's, recorded by a replica under KEK k2, which this gateway does not have, and lou's, a
 * later event's ciphertext altered (the gateway of ungroupable-gateway.ts). Grouping reads payloads, so neither is
 * grouped: each is listed in place of its groups with a badge (no KEK here / altered) whose page says why and what to
 * do; kim's readable group beside them is listed, opens and replays as ever.
 */

describe('unreadable modern exchanges in the grouped view', () => {
  let fixture: UngroupableGateway;
  let gw: TestGateway;
  let browser: Browser;
  let sessions: UngroupableGateway['sessions'];
  let groupIds: UngroupableGateway['groupIds'];

  before(async () => {
    fixture = await startUngroupableGateway();
    ({ gw, sessions, groupIds } = fixture);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await fixture?.stop();
  });

  const asAdam = (use: (page: Page) => Promise<void>) => asConsoleUser(browser, gw, 'adam', use);

  /** A page's Unreadable entry, once drawn: its badge, and all it says. */
  async function unreadableShown(page: Page): Promise<{ label: string; text: string }> {
    const entry = page.locator('dd.unreadable');
    await entry.waitFor();
    return { label: await textOf(entry.locator('.flag').first()), text: await textOf(entry) };
  }

  it('the API lists them apart, classified as their own routes answer (no-kek 503, altered 500), with why and what to do', async () => {
    const { groups, unreadable } = await fixture.listed();
    assert.deepEqual(
      unreadable.map((s) => [s.id, s.subject, s.unreadableKind]).sort(),
      [
        [sessions.lou, 'lou', 'altered'],
        [sessions.olga, 'olga', 'no-kek'],
      ].sort(),
    );
    assert.ok(!groups.some((g) => g.sessions.includes(sessions.olga) || g.sessions.includes(sessions.lou)), 'neither is in a group');
    assert.deepEqual(groups.find((g) => g.id === groupIds.kim)?.sessions, [sessions.kim], "kim's group is listed as ever");
  });

  it("lists the session of a KEK this gateway lacks and the altered one apart, each flagged, its reason in the badge's description; kim's group unaffected", async () => {
    await asAdam(async (page) => {
      await groupsView(page, gw);
      const olga = rowLinking(page, href(sessions.olga));
      assert.equal(await olga.locator('.flag').textContent(), 'unreadable: no KEK here');
      const tip = (await olga.locator('.flag').getAttribute('title')) ?? '';
      assert.match(tip, /^Its recording is encrypted under a key-encryption key \(KEK\) this gateway does not have/);
      assert.match(tip, new RegExp(`Why: the recording of ${sessions.olga} is encrypted under KEK 'k2', which this config does not have`));
      assert.match(tip, /What to do: add the KEK it names to recording\.encryption\.keys, with the same key material as the gateway that recorded it/);
      assert.match(await textOf(olga), /not grouped: the exchanges of the pooled session opened then cannot be read here \(its KEK is not configured\)/);

      const lou = rowLinking(page, href(sessions.lou));
      assert.equal(await lou.locator('.flag').textContent(), 'unreadable: altered');
      assert.match((await lou.locator('.flag').getAttribute('title')) ?? '', new RegExp(`Why: session ${sessions.lou} event \\d+'s payload does not decrypt`));

      const kim = rowLinking(page, href(groupIds.kim));
      await kim.waitFor();
      assert.equal(await kim.locator('.flag').count(), 0);
      assert.match(await textOf(kim), /kim/);
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
    });
  });

  it("the keyboard reaches the no-KEK badge's explanation: the session's page says why, what to do, and verifies it without the key", async () => {
    await asAdam(async (page) => {
      await groupsView(page, gw);
      const row = rowLinking(page, href(sessions.olga));
      await followByKeyboard(page, row, row.getByRole('link', { name: 'unreadable: no KEK here', exact: true }));
      await page.getByRole('heading', { name: `Session ${sessions.olga}` }).waitFor();
      const { label, text } = await unreadableShown(page);
      assert.equal(label, 'unreadable: no KEK here');
      assert.match(text, /Why: the recording of .* is encrypted under KEK 'k2', which this config does not have/);
      assert.match(
        text,
        new RegExp(`What to do: add the KEK it names to recording\\.encryption\\.keys.*\`portcullis sessions verify ${sessions.olga}\` needs no key`),
      );
      await page.getByText('Nothing to replay: this session cannot be read here.').waitFor();
      await page.getByText(/^Verified: hash chain and seal intact \(/).waitFor();
      assert.deepEqual(await accessibilityViolations(page), [], 'WCAG 2 AA');
    });
  });

  it("a group id of the no-KEK session says why it cannot be told apart, and where the rest may be; the altered session's page says what does not decrypt", async () => {
    await asAdam(async (page) => {
      await openSessionPage(page, gw, `${sessions.olga}.2`);
      const { label, text } = await unreadableShown(page);
      assert.equal(label, 'unreadable: no KEK here');
      assert.match(text, /this group cannot be told apart/);
      await page.getByRole('link', { name: 'the groups of this user on this connection' }).waitFor();
      await page.getByText("Nothing to replay: this group's session cannot be read here.").waitFor();

      await openSessionPage(page, gw, sessions.lou);
      const altered = await unreadableShown(page);
      assert.equal(altered.label, 'unreadable: altered');
      assert.match(altered.text, new RegExp(`Why: session ${sessions.lou} event \\d+'s payload does not decrypt: it was altered`));
      await page.getByText(/^Verification FAILED/).waitFor();
    });
  });

  it("kim's readable group opens and replays beside them", async () => {
    await asAdam(async (page) => {
      await openSessionPage(page, gw, groupIds.kim);
      await page.getByText(/kim 2/).first().waitFor();
      await page.getByText(/^Verified: hash chain and seal intact \(/).waitFor();
      assert.equal(await page.locator('dd.unreadable').count(), 0);
    });
  });

  it('a user sees their own altered session listed apart, and nobody else the no-KEK one (it cannot be attested as theirs)', async () => {
    const lou = await fixture.listed(await gw.tokenFor('lou'));
    assert.deepEqual([lou.groups, lou.unreadable.map((s) => s.id)], [[], [sessions.lou]]);
    const kim = await fixture.listed(await gw.tokenFor('kim'));
    assert.deepEqual([kim.groups.map((g) => g.id), kim.unreadable], [[groupIds.kim], []]);
  });
});
