import assert from 'node:assert/strict';
import type { Browser, Locator, Page } from 'playwright-core';
import { pageProblems } from './browser.js';
import type { TestGateway } from './gateway.js';

/**
 * A page signed in to a test gateway's console as `user` (the dev identity's sign-in page), on the sessions list, for
 * `use`; then no page error or CSP refusal, and the page closed with its context.
 */
export async function asConsoleUser(browser: Browser, gw: TestGateway, user: string, use: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  try {
    const page = await context.newPage();
    const problems = pageProblems(page);
    await page.goto(gw.gateway.consoleUrl!);
    await page.getByRole('button', { name: `Sign in as ${user}`, exact: true }).click();
    await page.getByRole('heading', { name: 'Sessions', level: 1 }).waitFor();
    await use(page);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
}

/** An element's text, all of it (hidden parts too), trimmed. */
export const textOf = async (l: Locator): Promise<string> => ((await l.textContent()) ?? '').trim();

/** A session's or a group's page's Erased entry, once drawn: its badge, and all it says. */
export async function erasureShown(page: Page): Promise<{ label: string; text: string }> {
  const erasure = page.locator('dd.erased');
  await erasure.waitFor();
  return { label: await textOf(erasure.locator('.flag').first()), text: await textOf(erasure) };
}

/** The row of a console table that links to `href`. */
export const rowLinking = (page: Page, href: string): Locator => page.getByRole('row').filter({ has: page.locator(`a[href="${href}"]`) });

/**
 * Reaches `badge` with the keyboard from the row's first link (one Tab: it is the next stop) and follows it with Enter,
 * as someone without a mouse or on a touch screen reaches what a hover's tooltip says.
 */
export async function followByKeyboard(page: Page, row: Locator, badge: Locator): Promise<void> {
  await row.getByRole('link').first().focus();
  await page.keyboard.press('Tab');
  // Run in the page (no DOM types here): whether the badge is what has the focus.
  const focused = await badge.evaluate((el) => el === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement);
  assert.ok(focused, 'the badge is the next stop of the keyboard');
  await page.keyboard.press('Enter');
}

/** A session's or a group's page in the console. */
export const sessionHref = (id: string): string => `/sessions/${encodeURIComponent(id)}`;

/** The console's grouped view of modern exchanges, once its table is drawn. */
export async function groupsView(page: Page, gw: TestGateway): Promise<void> {
  await page.goto(new URL('/?view=groups', gw.url).href);
  await page.locator('table.groups').waitFor();
}

/** Goes to a session's (or a group's) page and waits for its heading. */
export async function openSessionPage(page: Page, gw: TestGateway, id: string): Promise<void> {
  await page.goto(new URL(sessionHref(id), gw.url).href);
  await page.getByRole('heading', { name: `Session ${id}` }).waitFor();
}
