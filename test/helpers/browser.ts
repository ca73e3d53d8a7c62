import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core, for the console's browser tests. It must be there: .ci/run installs
 * the `chromium` package, and a machine without it fails these tests rather than skipping them.
 * PORTCULLIS_CHROMIUM points at another binary.
 */

export const chromiumPath = process.env.PORTCULLIS_CHROMIUM ?? '/usr/bin/chromium';

/** Where the tests save a screenshot of each page (linked from the README). */
export const screenshotDir = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url));

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium is not at ${chromiumPath}: install Debian's chromium package (apt-get install chromium; .ci/run does), or set PORTCULLIS_CHROMIUM`,
    );
  }
  // The flags keep a headless Chromium off a network this machine does not have (updates, sync, QUIC).
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** Saves a full-page screenshot as docs/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: `${screenshotDir}${name}.png`, fullPage: true });
}

/**
 * Collects a page's uncaught errors and what its Content-Security-Policy refused, so a test can assert the console
 * ran cleanly under it (a refused API call, 401 before signing in say, is the page's business, not a problem).
 */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  return problems;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * What axe-core finds against WCAG 2 A and AA on the page as it is now (labels, names, contrast, landmarks…), one
 * line per rule and element. Run through the DevTools protocol, so the page's CSP is not loosened for it.
 */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run(o: unknown): Promise<{ violations: Array<{ id: string; help: string; nodes: Array<{ target: string[] }> }> }> } }
    ).axe;
    const result = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map(
      (v) =>
        `${v.id} (${v.help}): ${v.nodes
          .map((n) => n.target.join(' '))
          .slice(0, 5)
          .join(', ')}`,
    );
  });
  return violations;
}
