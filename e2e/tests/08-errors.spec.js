// Errors read as sentences, never as a blank page.
import { test, expect, shot, freshContext } from './fixtures.js';

test('an unknown session shows a readable error, not a blank page', async ({ page }) => {
  await page.goto('/s/doesnotexist');
  const banner = page.getByTestId('error-banner');
  await expect(banner).toBeVisible();
  const text = (await banner.innerText()).trim();
  expect(text.length).toBeGreaterThan(10);
  expect(text).not.toMatch(/^[{[]/); // not raw JSON
  expect(text).not.toMatch(/undefined|\[object /);
  // The page still has its frame (a way back), not only the banner.
  expect((await page.locator('body').innerText()).trim().length).toBeGreaterThan(text.length);
  test.info().annotations.push({ type: 'banner', description: text });
  await shot(page, 'error');
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
