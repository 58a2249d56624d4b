// Errors read as sentences, never as a blank page.
import { test, expect, shot, freshContext } from './fixtures.js';

test('an unknown session is a plain 404 page with the way back, not a broken workspace', async ({ page }) => {
  await page.goto('/s/doesnotexist');
  const notFound = page.getByTestId('not-found');
  await expect(notFound).toBeVisible();
  await expect(notFound).toContainText('No such session');
  // No workspace around nothing: no tabs, no status bar, no error banner.
  for (const testid of ['status-connection', 'new-terminal', 'files-panel', 'error-banner']) {
    await expect(page.getByTestId(testid), testid).toHaveCount(0);
  }
  await shot(page, 'error');
  await notFound.getByTestId('not-found-back').click();
  await expect(page.getByTestId('session-list')).toBeVisible();
});

test('a failed create shows the server\'s error and creates nothing', async ({ page, flint }) => {
  // The form only offers real images: a request rewritten on its way out gets a real error
  // from the real server.
  await page.route('**/api/sessions', async (route) => {
    const request = route.request();
    if (request.method() !== 'POST') return route.continue();
    const body = { ...request.postDataJSON(), image: 'no-such-image-e2e' };
    return route.continue({ postData: JSON.stringify(body) });
  });
  const before = (await flint.api('GET', '/api/sessions')).json.length;
  await page.goto('/');
  await page.getByTestId('create-session').click();
  await page.getByTestId('create-image').selectOption('test');
  await page.getByTestId('create-name').fill('e2e-doomed');
  await page.getByTestId('create-submit').click();

  const banner = page.getByTestId('error-banner');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText(/no-such-image-e2e|image/i);
  await expect(page.getByTestId('session-row').filter({ hasText: 'e2e-doomed' })).toHaveCount(0);
  expect((await flint.api('GET', '/api/sessions')).json.length).toBe(before);
});

test('signed out, a workspace URL shows the signed-out page', async ({ browser, flint }) => {
  const context = await freshContext(browser);
  const page = await context.newPage();
  await page.goto(`${flint.url}/s/doesnotexist`);
  await expect(page.getByTestId('signed-out')).toBeVisible();
  await context.close();
});
