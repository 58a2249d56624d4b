// Destroying sessions: from the list (with confirmation), and elsewhere (seen live).
import { test, expect, markDocument } from './fixtures.js';

test('destroying a session from the list removes its row without a reload', async ({ page, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-destroy' });
  await page.goto('/');
  const row = page.locator(`[data-testid="session-row"][data-session-id="${session.id}"]`);
  await expect(row).toHaveAttribute('data-state', 'running');
  const stillSameDocument = await markDocument(page);

  await row.getByTestId('destroy-session').click();
  await page.getByTestId('confirm-destroy').click();
  await expect(row).toHaveCount(0);
  expect(await stillSameDocument()).toBe(true);
  expect((await flint.api('GET', `/api/sessions/${session.id}`)).status).toBe(404);
});

test('a session destroyed elsewhere leaves the list live', async ({ page, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-destroy-elsewhere' });
  await page.goto('/');
  const row = page.locator(`[data-testid="session-row"][data-session-id="${session.id}"]`);
  await expect(row).toHaveAttribute('data-state', 'running');
  const stillSameDocument = await markDocument(page);

  expect((await flint.api('DELETE', `/api/sessions/${session.id}`)).status).toBe(204);
  await expect(row).toHaveCount(0);
  expect(await stillSameDocument()).toBe(true);
});
