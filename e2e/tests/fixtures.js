// The suite's fixtures: one `flint serve` (behind its relay) per worker, a signed-in
// browser state per worker, sessions cleaned up after each test, screenshots to target/e2e/.
import path from 'node:path';
import { test as base, expect } from '@playwright/test';
import { startFlint, E2E_OUT } from '../lib/flint.js';

export { expect };

export const test = base.extend({
  // The server. Worker-scoped: a failed test restarts the worker, and with it the server.
  flint: [
    async ({}, use, workerInfo) => {
      const flint = await startFlint({ name: `w${workerInfo.workerIndex}` });
      try {
        await use(flint);
      } finally {
        await flint.stop();
      }
    },
    { scope: 'worker', timeout: 90_000 },
  ],

  // A signed-in cookie, from a fresh `flint login-url` (the printed link is left for the
  // sign-in test).
  authState: [
    async ({ flint, browser }, use) => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const response = await page.goto(await flint.newLoginUrl());
      if (!response || !response.ok()) throw new Error(`sign-in failed: ${response && response.status()}`);
      const state = await context.storageState();
      await context.close();
      if (!state.cookies.length) throw new Error('sign-in set no cookie');
      await use(state);
    },
    { scope: 'worker' },
  ],

  baseURL: async ({ flint }, use) => use(flint.url),
  storageState: async ({ authState }, use) => use(authState),

  // Page errors and console errors are attached to a failed test's report.
  page: async ({ page }, use, testInfo) => {
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console.error: ${m.text()}`));
    await use(page);
    if (testInfo.status !== testInfo.expectedStatus && problems.length) {
      await testInfo.attach('browser-errors', { body: problems.join('\n'), contentType: 'text/plain' });
      console.error(`browser errors in "${testInfo.title}":\n  ${problems.slice(-20).join('\n  ')}`);
    }
  },

  // Sessions a test made (through the API or the UI): deleted after the test.
  sessions: async ({ flint }, use) => {
    const ids = new Set();
    await use({
      track: (id) => ids.add(id),
      create: async (fields = {}) => {
        const session = await flint.createSession(fields);
        ids.add(session.id);
        return session;
      },
    });
    for (const id of ids) await flint.api('DELETE', `/api/sessions/${id}`).catch(() => {});
  },
});

/**
 * Another browser: a context without the suite's sign-in cookie. (Inside a test,
 * `browser.newContext()` inherits the test's options, the signed-in `storageState` included.)
 */
export async function freshContext(browser, options = {}) {
  return browser.newContext({ storageState: { cookies: [], origins: [] }, ...options });
}

/** Saves a screenshot of the page as target/e2e/<name>.png. */
export async function shot(page, name) {
  await page.screenshot({ path: path.join(E2E_OUT, `${name}.png`) });
}

/**
 * Marks the current document, so a test can tell afterwards that what it saw changed live
 * and not through a reload (a reload makes a new document, without the mark).
 */
export async function markDocument(page) {
  await page.evaluate(() => (window.__e2eNoReload = true));
  return async () => page.evaluate(() => window.__e2eNoReload === true);
}
