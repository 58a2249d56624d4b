// A second terminal tab: its own shell; closing it kills it.
import { test, expect } from './fixtures.js';
import { until, waitForPrompt, waitForLine, typeCommand, countLines } from '../lib/terminal.js';

test('a new tab has its own shell, and closing it removes the terminal', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-tabs' });
  await page.goto(`/s/${session.id}`);
  const first = await waitForPrompt(page);
  const tabs = page.getByTestId('terminal-tab');
  await expect(tabs).toHaveCount(1);

  await page.getByTestId('new-terminal').click();
  await expect(tabs).toHaveCount(2);
  const newTab = tabs.and(page.locator('[data-active="true"]'));
  await expect(newTab).toHaveCount(1);
  const second = await newTab.getAttribute('data-terminal-id');
  expect(second).not.toBe(first);
  await expect(page.getByTestId('terminal')).toHaveAttribute('data-terminal-id', second);
  await expect(page.locator(`[data-testid="terminal-tab"][data-terminal-id="${first}"]`)).toHaveAttribute('data-active', 'false');

  await waitForPrompt(page, second);
  await typeCommand(page, 'echo tab-two-$((3*3))');
  await waitForLine(page, second, 'tab-two-9');
  expect(await countLines(page, first, 'tab-two-9')).toBe(0);

  const listed = async () => (await (await page.request.get(`/api/sessions/${session.id}/terminals`)).json()).map((t) => t.id);
  expect(await listed()).toEqual(expect.arrayContaining([first, second]));

  await newTab.getByTestId('close-terminal').click();
  await expect(tabs).toHaveCount(1);
  await expect(tabs.first()).toHaveAttribute('data-terminal-id', first);
  await expect(page.getByTestId('terminal')).toHaveAttribute('data-terminal-id', first);
  await until(async () => !(await listed()).includes(second), {
    message: async () => `terminal ${second} is still listed: ${JSON.stringify(await listed())}`,
  });
  expect(await listed()).toContain(first);

  // The first shell still works.
  await typeCommand(page, 'echo tab-one-$((4*4))');
  await waitForLine(page, first, 'tab-one-16');
});
