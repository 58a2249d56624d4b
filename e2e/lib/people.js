// People in a session, as the owner's Share dialog and an invitee's browser see them.
import { expect } from '@playwright/test';

/**
 * Makes an invite link with `role` in the open Share dialog; its URL. Every link made on the
 * page stays in its invite's row (`invite-link`): the new one is the one not there before.
 */
export async function makeInvite(page, role) {
  const dialog = page.getByTestId('share-dialog');
  const links = dialog.getByTestId('invite-link');
  const before = await links.allTextContents();
  await dialog.getByTestId('share-role').selectOption(role);
  await dialog.getByTestId('share-create').click();
  await expect(links).toHaveCount(before.length + 1);
  const after = await links.allTextContents();
  const url = after.map((text) => text.trim()).find((text) => !before.some((b) => b.trim() === text));
  expect(url).toContain('/join/');
  const row = dialog.locator('[data-testid="invite-row"]').filter({ has: page.getByText(url, { exact: true }) });
  await expect(row).toHaveAttribute('data-role', role);
  return url;
}

/** A new browser (`freshContext`) opening invite `url` and joining as `name`; its page, at the workspace. */
export async function join(freshContext, browser, flint, url, name, options = {}) {
  const context = await freshContext(browser, { baseURL: flint.url, ...options });
  const page = await context.newPage();
  await page.goto(url);
  await expect(page.getByTestId('join-page')).toBeVisible();
  await page.getByTestId('join-name').fill(name);
  await page.getByTestId('join-submit').click();
  await page.waitForURL(/\/s\//);
  return { context, page };
}
