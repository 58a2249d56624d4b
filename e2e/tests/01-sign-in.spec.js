// Signing in with the printed single-use link, a used link, signing out.
import { test, expect, shot, freshContext } from './fixtures.js';
import { waitForPrompt } from '../lib/terminal.js';

test('the printed login link signs in once, and sign-out signs out', async ({ browser, flint }) => {
  const context = await freshContext(browser);
  const page = await context.newPage();

  // Signed out, the app says so (never a blank page).
  await page.goto(`${flint.url}/`);
  await expect(page.getByTestId('signed-out')).toBeVisible();

  // The link printed by `flint serve` lands on the sessions page, signed in.
  const response = await page.goto(flint.loginUrl);
  expect(response.status()).toBe(200);
  await expect(page).toHaveURL(`${flint.url}/`);
  await expect(page.getByTestId('session-list')).toBeVisible();
  await expect(page.getByTestId('sign-out')).toBeVisible();
  await expect(page.getByTestId('signed-out')).toHaveCount(0);

  // The same link a second time (another browser): a clear page, not a sign-in.
  const other = await freshContext(browser);
  const otherPage = await other.newPage();
  const used = await otherPage.goto(flint.loginUrl);
  expect(used.status()).toBe(401);
  await expect(otherPage.locator('body')).toContainText('already used');
  expect((await other.cookies()).length).toBe(0);
  await other.close();

  // Sign out: the signed-out page; the cookie no longer opens the API, even after a reload.
  await page.getByTestId('sign-out').click();
  await expect(page.getByTestId('signed-out')).toBeVisible();
  await shot(page, 'signed-out');
  expect((await page.request.get(`${flint.url}/api/me`)).status()).toBe(401);
  await page.reload();
  await expect(page.getByTestId('signed-out')).toBeVisible();
  await context.close();
});

test('signing out in one tab ends the workspace open in another', async ({ browser, flint, sessions }) => {
  const context = await freshContext(browser);
  const page = await context.newPage();
  await page.goto(await flint.newLoginUrl());
  const session = await sessions.create({ name: 'e2e-signout' });
  await page.goto(`${flint.url}/s/${session.id}`);
  await waitForPrompt(page, null, { timeout: 30_000 });

  // Another tab of the same browser signs out: the open workspace's terminal is closed by
  // the server (its credential ended) and the tab says it is signed out, at once.
  const other = await context.newPage();
  await other.goto(`${flint.url}/`);
  await other.getByTestId('sign-out').click();
  await expect(other.getByTestId('signed-out')).toBeVisible();
  await expect(page.getByTestId('signed-out')).toBeVisible({ timeout: 5_000 });
  await shot(page, 'signed-out-elsewhere');
  await context.close();
});
