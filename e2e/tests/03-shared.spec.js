// Two browsers on one session share its terminal: one types, both see.
import { test, expect, freshContext } from './fixtures.js';
import { waitForPrompt, waitForLine, typeCommand } from '../lib/terminal.js';

test('a second browser opens the same terminal and what it types shows in the first', async ({ page, browser, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-shared' });

  await page.goto(`/s/${session.id}`);
  const first = await waitForPrompt(page);

  const context = await freshContext(browser, { baseURL: flint.url });
  try {
    const second = await context.newPage();
    const signedIn = await second.goto(await flint.newLoginUrl());
    expect(signedIn.status()).toBe(200);
    await second.goto(`/s/${session.id}`);
    const secondId = await waitForPrompt(second);
    expect(secondId).toBe(first);
    await expect(second.getByTestId('terminal-tab')).toHaveCount(1);

    await typeCommand(second, 'echo from-second-$((1+1))');
    await waitForLine(second, secondId, 'from-second-2');
    await waitForLine(page, first, 'from-second-2');

    // And the other way round.
    await typeCommand(page, 'echo from-first-$((2+3))');
    await waitForLine(page, first, 'from-first-5');
    await waitForLine(second, secondId, 'from-first-5');
  } finally {
    await context.close();
  }
});
