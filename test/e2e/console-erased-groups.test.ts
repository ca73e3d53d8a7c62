import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Identity } from '../../src/core/identity.js';
import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import type { ErasedModernSession, ListedGroup } from '../../src/recording/session-groups.js';
import { callApi } from '../helpers/api.js';
import { accessibilityViolations, launchBrowser } from '../helpers/browser.js';
import { asConsoleUser, erasureShown, followByKeyboard, rowLinking, textOf } from '../helpers/console-page.js';
import { type EchoServer, startEchoServer } from '../helpers/echo-server.js';
import { encryptRecordings, eraseThroughApi, eraseWithSqlLike, localEncryption } from '../helpers/encrypted-gateway.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { recordModernSession } from '../helpers/modern-session.js';
import { mcpHeaders, rawInitialize } from '../helpers/raw-http.js';

/**
 * The console's grouped view of modern (2026-07-28) exchanges over erased recordings. An erased pooled session's
 * exchanges cannot be grouped (grouping reads payloads), so the view lists it in place of its groups, flagged as the
 * sessions list flags it; a group with an erased session of its user and connection near it may be partly erased, and
 * says so; a group left alone says nothing. Modern sessions as the modern edge records them, of four users: ada's
 * trace over two pooled sessions, the first erased by an admin; eve's one session erased; ned's data key destroyed with
 * SQL (no signed ledger entry vouches for it); kim's kept.
 */

type Groups = { groups: ListedGroup[]; erased: ErasedModernSession[] };

describe('erased modern exchanges in the grouped view', () => {
  let gw: TestGateway;
  let echo: EchoServer;
  let browser: Browser;
  let dir: string;
  /** Pooled sessions, each user's in order. */
  const sessions = { ada: [] as string[], eve: '', ned: '', kim: '' };
  /** Group ids as they were before the erasure; ada's after it (her first session's part is gone). */
  const groupIds = { adaBefore: '', adaAfter: '', eve: '', ned: '', kim: '' };
  let adam = '';

  before(async () => {
    echo = await startEchoServer();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-console-erased-groups-'));
    const users = { adam: ['admins', 'auditors'], ada: ['testers'], eve: ['testers'], ned: ['testers'], kim: ['testers'] };
    gw = await startTestGateway({
      identity: { dev: { users } },
      roles: { auditors: ['auditors'], admins: ['admins'] },
      recording: { encryption: localEncryption(dir) },
      connections: { echo: { http: { url: echo.url } } },
    });
    adam = await gw.tokenFor('adam');
    const record = async (identity: Identity, id: number, trace: string) =>
      recordModernSession(gw, 'echo', identity, [{ id, message: `${identity.subject} ${id}`, trace }]);
    const ada = await identityOf('ada');
    const trace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1';
    sessions.ada.push(await record(ada, 2, trace), await record(ada, 3, trace));
    sessions.eve = await record(await identityOf('eve'), 2, 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee2');
    sessions.ned = await record(await identityOf('ned'), 2, 'ddddddddddddddddddddddddddddddd3');
    sessions.kim = await record(await identityOf('kim'), 2, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb4');
    await encryptRecordings(gw);

    const before = await listed();
    const groupOf = (g: Groups, session: string) => g.groups.find((x) => x.sessions.includes(session))?.id ?? '';
    groupIds.adaBefore = groupOf(before, sessions.ada[0]!);
    assert.deepEqual(before.groups.find((g) => g.id === groupIds.adaBefore)?.sessions, sessions.ada, "ada's trace is one group over both her sessions");
    for (const who of ['eve', 'ned', 'kim'] as const) groupIds[who] = groupOf(before, sessions[who]);
    assert.deepEqual(before.erased, [], 'nothing erased yet');

    await eraseThroughApi(gw, adam, [sessions.ada[0]!, sessions.eve], 'privacy request 7');
    // The same admin and a like reason, written into ned's key row with SQL: only the signed ledger entry is missing.
    await eraseWithSqlLike(gw, adam, sessions.eve, sessions.ned, 'privacy request 8');
    // kim's session is encrypted with a live key: her group shows no badge because nothing of hers is erased.
    const keys = await gw.gateway.recorder!.store.dataKeys([...sessions.ada, sessions.eve, sessions.ned, sessions.kim]);
    assert.deepEqual(
      keys
        .filter((k) => k.wrapped !== null)
        .map((k) => k.owner)
        .sort(),
      [sessions.ada[1], sessions.kim].sort(),
      'live keys: the kept ones',
    );
    assert.equal(keys.length, 5, 'each session has a data key');
    groupIds.adaAfter = groupOf(await listed(), sessions.ada[1]!);
    assert.ok(groupIds.adaAfter.startsWith(`${sessions.ada[1]}.`), 'what is left of her group is named by its first readable request');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await echo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A user's identity as the gateway authenticates them (from a session opened with their token, then ended). */
  async function identityOf(user: string): Promise<Identity> {
    const auth = { authorization: `Bearer ${await gw.tokenFor(user)}` };
    const id = await rawInitialize(gw.mcp('echo'), auth);
    const identity = gw.gateway.sessions.get(id)!.identity;
    await fetch(gw.mcp('echo'), { method: 'DELETE', headers: { ...mcpHeaders, ...auth, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' } });
    return identity;
  }

  /** The API's listing of the groups, as `token`'s holder (adam: everyone's). */
  async function listed(token = adam): Promise<Groups> {
    const r = await callApi<Groups>(gw.url, token, 'GET', '/api/sessions/groups?connection=echo');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  }

  const asAdam = (use: (page: Page) => Promise<void>) => asConsoleUser(browser, gw, 'adam', use);
  const href = (id: string) => `/sessions/${encodeURIComponent(id)}`;

  /** The grouped view, drawn. */
  async function groupsView(page: Page): Promise<void> {
    await page.goto(new URL('/?view=groups', gw.url).href);
    await page.locator('table.groups').waitFor();
  }

  /** Goes to a group's (or session's) page and waits for its heading. */
  async function open(page: Page, id: string): Promise<void> {
    await page.goto(new URL(href(id), gw.url).href);
    await page.getByRole('heading', { name: `Session ${id}` }).waitFor();
  }

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
      assert.match(text, /this group cannot be told apart any more/);
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
    assert.deepEqual(own.erased, []);
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
