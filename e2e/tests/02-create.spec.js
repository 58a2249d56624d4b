// Creating a session from the list, seeing it run, opening it, using its shell.
import { test, expect, shot, markDocument } from './fixtures.js';
import { waitForPrompt, waitForLine, typeCommand } from '../lib/terminal.js';
import { E2E_DRIVER } from '../lib/flint.js';

/** What the UI says of the suite's driver: gVisor is strong isolation, `process` weak. */
const ISOLATION = E2E_DRIVER === 'process' ? 'weak' : 'strong';

test('a session created in the UI appears live, runs, opens, and its shell answers', async ({ page, sessions }) => {
  await page.goto('/');
  await expect(page.getByTestId('session-list')).toBeVisible();
  // The page warns of weak isolation on the `process` driver, and only there.
  if (ISOLATION === 'weak') await expect(page.getByTestId('server-warning')).toContainText('weak isolation');
  else await expect(page.getByTestId('server-warning')).toHaveCount(0);
  const stillSameDocument = await markDocument(page);

  const name = `e2e-create-${Date.now().toString(36)}`;
  await page.getByTestId('create-session').click();
  // The images are the server's specs, the default first and chosen, each with what is in it.
  const images = page.getByTestId('create-image');
  await expect(images.locator('option').first()).toHaveText(/^default: Debian trixie with git/);
  await expect(images).toHaveValue('default');
  await expect(images.locator('option[value="vite"]')).toContainText('Vite 5 dev server');
  await images.selectOption('test');
  await page.getByTestId('create-size').selectOption('small');
  await page.getByTestId('create-name').fill(name);
  await shot(page, 'create-session');
  await page.getByTestId('create-submit').click();

  const row = page.getByTestId('session-row').filter({ hasText: name });
  await expect(row).toHaveCount(1);
  const id = await row.getAttribute('data-session-id');
  expect(id).toBeTruthy();
  sessions.track(id);
  await expect(row).toHaveAttribute('data-state', 'running', { timeout: 30_000 });
  await expect(row.getByTestId('download-workspace')).toHaveAttribute('href', `/api/sessions/${id}/workspace.tar`);
  expect(await stillSameDocument()).toBe(true);

  // What the UI asked for is what the server made.
  const info = await (await page.request.get(`/api/sessions/${id}`)).json();
  expect(info).toMatchObject({ id, name, image: 'test', state: 'running' });
  expect(info.limits.memory_mb).toBe(512);
  await shot(page, 'sessions');

  await row.getByTestId('open-session').click();
  await expect(page).toHaveURL(new RegExp(`/s/${id}$`));
  const terminal = await waitForPrompt(page);
  await expect(page.getByTestId('status-connection')).toHaveText('connected');
  await expect(page.getByTestId('status-session')).toHaveText('running');
  await expect(page.getByTestId('status-isolation')).toContainText(ISOLATION);

  // The output line, not the echoed command: only the shell computes 42.
  await typeCommand(page, 'echo hello-$((6*7))');
  await waitForLine(page, terminal, 'hello-42');
  await shot(page, 'workspace');
});

test('a session created elsewhere appears in the list without a reload', async ({ page, flint, sessions }) => {
  await page.goto('/');
  await expect(page.getByTestId('session-list')).toBeVisible();
  const stillSameDocument = await markDocument(page);
  // Let the events websocket connect before the session exists.
  await page.waitForTimeout(500);

  const name = `e2e-elsewhere-${Date.now().toString(36)}`;
  const session = await sessions.create({ name });
  const row = page.locator(`[data-testid="session-row"][data-session-id="${session.id}"]`);
  await expect(row).toHaveAttribute('data-state', 'running');
  await expect(row).toContainText(name);
  expect(await stillSameDocument()).toBe(true);
});
