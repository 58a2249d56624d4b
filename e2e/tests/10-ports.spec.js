// Preview URLs in the UI: a server started in the terminal shows up live in the Ports panel
// (and in a toast), its preview opens in a new tab through a ticket, and its public/private
// state and share links are set from the panel.
import { test, expect, freshContext, shot } from './fixtures.js';
import { waitForPrompt, typeCommand } from '../lib/terminal.js';

/** Opens a new tab by clicking `link`, and waits until it has loaded. */
async function openedBy(page, link) {
  const [tab] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
  await tab.waitForLoadState();
  return tab;
}

test('a port opened in the terminal appears live, opens its preview in a new tab, and stays public after a reload', async ({ page, browser, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-ports' });
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);

  const panel = page.getByTestId('ports-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('ports-empty')).toContainText('No ports yet');

  // A server in the shared shell: its row and a toast, without a reload.
  await typeCommand(page, 'python3 -m http.server 8000');
  const row = panel.getByTestId('port-row-8000');
  await expect(row).toBeVisible();
  await expect(row.getByTestId('port-process-8000')).toHaveText('python3');
  await expect(panel.getByTestId('ports-empty')).toHaveCount(0);
  await expect(page.getByTestId('ports-toggle-count')).toHaveText('1');
  const url = `http://8000-${session.id}.preview.localhost:${new URL(flint.url).port}/`;
  await expect(row.getByTestId('port-url-8000')).toHaveText(url);
  const toast = page.getByTestId('toast').filter({ hasText: 'Port 8000 is listening' });
  await expect(toast).toBeVisible();
  await expect(toast.getByTestId('toast-open-8000')).toHaveText('open preview');
  await shot(page, 'ports');

  // Open preview: a new tab on the preview host, signed in by a ticket, showing the listing.
  const preview = await openedBy(page, row.getByTestId('port-open-8000'));
  try {
    expect(new URL(preview.url()).host).toBe(new URL(url).host);
    expect(preview.url()).not.toContain('ticket');
    await expect(preview.locator('h1')).toHaveText('Directory listing for /');
  } finally {
    await preview.close();
  }
  // The toast's button does the same, and the toast goes.
  const fromToast = await openedBy(page, toast.getByTestId('toast-open-8000'));
  try {
    await expect(fromToast.locator('h1')).toHaveText('Directory listing for /');
  } finally {
    await fromToast.close();
  }
  await expect(toast).toHaveCount(0);

  // Copy URL puts the preview URL on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: flint.url });
  await row.getByTestId('port-copy-8000').click();
  await expect(row.getByTestId('port-copy-8000')).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(url);

  // Private by default: a browser without Flint's cookie does not see it.
  const toggle = row.getByTestId('port-public-8000');
  await expect(toggle).toHaveAttribute('aria-checked', 'false');
  await expect(toggle).toHaveText('Private');
  const stranger = await freshContext(browser);
  try {
    const other = await stranger.newPage();
    await other.goto(url);
    await expect(other.locator('body')).not.toContainText('Directory listing for /');

    // Public: anyone with the URL.
    await toggle.click();
    await expect(toggle).toHaveAttribute('aria-checked', 'true');
    await expect(toggle).toHaveText('Public');
    await expect(row).toHaveAttribute('data-public', 'true');
    const listed = await flint.api('GET', `/api/sessions/${session.id}/previews`);
    expect(listed.status, listed.text).toBe(200);
    expect(listed.json.find((p) => p.port === 8000)?.public).toBe(true);
    await other.goto(url);
    await expect(other.locator('h1')).toHaveText('Directory listing for /');

    // Still public after a reload; a port open before the page loaded gets no toast.
    await page.reload();
    const reloaded = page.getByTestId('ports-panel').getByTestId('port-row-8000');
    await expect(reloaded).toBeVisible();
    const again = reloaded.getByTestId('port-public-8000');
    await expect(again).toHaveAttribute('aria-checked', 'true');
    await expect(page.getByTestId('toast')).toHaveCount(0);

    // Back to private; a share link lets the stranger in, until it is revoked.
    await again.click();
    await expect(again).toHaveAttribute('aria-checked', 'false');
    await reloaded.getByTestId('port-share-8000').click();
    const shareUrl = reloaded.getByTestId('port-share-url-8000');
    await expect(shareUrl).toHaveText(/^http:\/\/8000-.*flint_share=/);
    const share = reloaded.getByTestId('port-share-link');
    await expect(share).toHaveCount(1);
    await expect(share).toContainText(/expires in (23 h 59 min|1 d 0 h)/);
    const shareId = await share.getAttribute('data-share-id');
    await shot(page, 'ports-share');
    await other.goto((await shareUrl.textContent()).trim());
    await expect(other.locator('h1')).toHaveText('Directory listing for /');

    await reloaded.getByTestId(`port-share-revoke-${shareId}`).click();
    await expect(share).toHaveCount(0);
    await expect(reloaded.getByTestId('port-share-new-8000')).toHaveCount(0);
    const after = await flint.api('GET', `/api/sessions/${session.id}/previews`);
    expect(after.json.find((p) => p.port === 8000)?.shares).toEqual([]);
    await other.reload();
    await expect(other.locator('body')).not.toContainText('Directory listing for /');

    // A link for an hour, chosen beside the button.
    await reloaded.getByTestId('port-share-lifetime-8000').selectOption('3600');
    await reloaded.getByTestId('port-share-8000').click();
    await expect(share).toHaveCount(1);
    await expect(share).toContainText(/expires in 59 min/);
  } finally {
    await stranger.close();
  }

  // Stopping the server takes the row away.
  await page.getByTestId('terminal').click();
  await page.keyboard.press('Control+C');
  await expect(page.getByTestId('ports-panel').getByTestId('port-row-8000')).toHaveCount(0);
  await expect(page.getByTestId('ports-empty')).toBeVisible();
});
