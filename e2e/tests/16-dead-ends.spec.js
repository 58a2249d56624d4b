// Dead ends a person could meet, each with its way out: a guest whose session is gone is
// told so; one shell exiting is not the app going offline; the list says when it is empty;
// viewers see no buttons they cannot use; a second invite link does not hide the first;
// closing a tab with a running command asks first; the active tab survives a reload; the
// Activity panel shows names whole and what people did in words.
import { test, expect, freshContext, shot } from './fixtures.js';
import { until, waitForPrompt, waitForLine, typeCommand } from '../lib/terminal.js';
import { makeInvite, join } from '../lib/people.js';

const tab = (page, id) => page.locator(`[data-testid="terminal-tab"][data-terminal-id="${id}"]`);

/** The shell state the agent reports for terminal `id` (`prompt`, `running`, ...). */
async function shellState(flint, sessionId, id) {
  const list = await flint.api('GET', `/api/sessions/${sessionId}/terminals`);
  return list.json?.find((t) => t.id === id)?.shell;
}

test('a guest whose session was destroyed is told so, not asked to sign in', async ({ page, browser, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-guest-ended' });
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  await page.getByTestId('share-open').click();
  const url = await makeInvite(page, 'viewer');
  await page.getByTestId('share-done').click();
  const guest = await join(freshContext, browser, flint, url, 'Ada');
  try {
    await waitForPrompt(guest.page);
    expect((await flint.api('DELETE', `/api/sessions/${session.id}`)).status).toBe(204);
    // Live, or coming back later: the page says what happened.
    await expect(guest.page.getByTestId('access-ended')).toBeVisible();
    await guest.page.reload();
    await expect(guest.page.getByTestId('access-ended-reason')).toContainText('The session was deleted');
    await expect(guest.page.getByTestId('signed-out')).toHaveCount(0);
    await shot(guest.page, 'guest-ended');
  } finally {
    await guest.context.close();
  }
});

test('one shell exiting leaves the status bar connected and says the terminal ended', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-shell-exit' });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page);
  await expect(page.getByTestId('status-connection')).toHaveText('connected');
  await typeCommand(page, 'exit 3');
  await expect(page.getByTestId('status-terminal-ended')).toContainText('exited with code 3');
  await expect(page.getByTestId('status-connection')).toHaveText('connected');
  await expect(tab(page, id)).toBeVisible();
});

test('the list says "No sessions" once the last one is destroyed', async ({ page, flint, sessions }) => {
  const leftovers = await flint.destroyAllSessions();
  expect(leftovers).toEqual([]);
  const session = await sessions.create({ name: 'e2e-last-one' });
  await page.goto('/');
  const row = page.locator(`[data-testid="session-row"][data-session-id="${session.id}"]`);
  await expect(row).toHaveAttribute('data-state', 'running');
  await expect(page.getByTestId('sessions-empty')).toHaveCount(0);
  await row.getByTestId('destroy-session').click();
  await page.getByTestId('confirm-destroy').click();
  await expect(row).toHaveCount(0);
  await expect(page.getByTestId('sessions-empty')).toContainText('No sessions');
});

test('a viewer sees no buttons they cannot use', async ({ page, browser, flint, sessions }) => {
  test.setTimeout(90_000);
  const session = await sessions.create({ name: 'e2e-viewer-buttons' });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page);
  await typeCommand(page, 'python3 -m http.server 8000 --bind 127.0.0.1');
  await expect(page.getByTestId('port-row-8000')).toBeVisible();
  await page.getByTestId('share-open').click();
  const url = await makeInvite(page, 'viewer');
  await page.getByTestId('share-done').click();
  const viewer = await join(freshContext, browser, flint, url, 'Linus');
  try {
    const p = viewer.page;
    await waitForLine(p, id, 'Serving HTTP on 127.0.0.1 port 8000 (http://127.0.0.1:8000/) ...');
    // Terminals: no new tab, no close.
    await expect(tab(p, id)).toBeVisible();
    for (const testid of ['new-terminal', 'close-terminal', 'share-open', 'connect-agent', 'agent-tokens', 'activity-connect']) {
      await expect(p.getByTestId(testid), testid).toHaveCount(0);
    }
    // Ports: open and copy, but not public/private, share links or the shared browser.
    const row = p.getByTestId('port-row-8000');
    await expect(row.getByTestId('port-open-8000')).toBeVisible();
    await expect(row.getByTestId('port-copy-8000')).toBeVisible();
    await expect(row.getByTestId('port-visibility-8000')).toHaveText('Private');
    for (const testid of ['port-public-8000', 'port-browser-8000']) {
      await expect(row.getByTestId(testid), testid).toHaveCount(0);
    }
    await expect(row.getByTestId('port-share-8000')).toBeHidden();
    // Files: nothing that writes.
    const files = p.getByTestId('files-panel');
    for (const testid of ['files-new-file', 'files-new-folder', 'files-upload']) {
      await expect(files.getByTestId(testid), testid).toBeHidden();
    }
    // The shared browser: watched, not driven.
    await p.getByTestId('browser-tab').first().click();
    await expect(p.getByTestId('browser-panel')).toBeVisible();
    for (const testid of ['browser-back', 'browser-forward', 'browser-reload', 'browser-new-tab']) {
      await expect(p.getByTestId(testid), testid).toHaveCount(0);
    }
    await expect(p.getByTestId('browser-url')).toHaveAttribute('readonly', '');
    await shot(p, 'viewer-buttons');
    // The list: their one session to open, nothing to make, extend or destroy.
    await p.goto('/');
    const listed = p.locator(`[data-testid="session-row"][data-session-id="${session.id}"]`);
    await expect(listed.getByTestId('open-session')).toBeVisible();
    for (const testid of ['create-session', 'extend-session', 'destroy-session']) {
      await expect(p.getByTestId(testid), testid).toHaveCount(0);
    }
  } finally {
    await viewer.context.close();
  }
});

test('a second invite link does not hide the first: both stay listed and copyable', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-two-invites' });
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  await page.getByTestId('share-open').click();
  const first = await makeInvite(page, 'editor');
  const second = await makeInvite(page, 'viewer');
  expect(second).not.toBe(first);
  const dialog = page.getByTestId('share-dialog');
  await expect(dialog.getByTestId('invite-link')).toHaveCount(2);
  for (const url of [first, second]) {
    const row = dialog.getByTestId('invite-row').filter({ has: page.getByText(url, { exact: true }) });
    await expect(row.getByTestId('invite-copy')).toBeVisible();
  }
  // Closing and opening the dialog again keeps them.
  await page.getByTestId('share-done').click();
  await page.getByTestId('share-open').click();
  await expect(dialog.getByTestId('invite-link')).toHaveCount(2);
  const shown = (await dialog.getByTestId('invite-link').allTextContents()).map((t) => t.trim());
  expect(shown.sort()).toEqual([first, second].sort());
  await shot(page, 'share-two-links');
});

test('closing a tab whose command runs asks first; a tab at its prompt closes at once', async ({ page, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-close-running' });
  await page.goto(`/s/${session.id}`);
  const busy = await waitForPrompt(page);
  await typeCommand(page, 'sleep 300');
  await until(async () => (await shellState(flint, session.id, busy)) === 'running', {
    message: async () => `the shell never said running (${await shellState(flint, session.id, busy)})`,
  });
  await tab(page, busy).getByTestId('close-terminal').click();
  const dialog = page.getByTestId('close-terminal-dialog');
  await expect(dialog).toBeVisible();
  await shot(page, 'close-running');
  await dialog.getByTestId('close-terminal-cancel').click();
  await expect(dialog).toHaveCount(0);
  await expect(tab(page, busy)).toBeVisible();
  expect(await shellState(flint, session.id, busy)).toBe('running');

  // A second tab at its prompt closes without a question.
  await page.getByTestId('new-terminal').click();
  await expect(page.getByTestId('terminal-tab')).toHaveCount(2);
  const idle = await waitForPrompt(page);
  expect(idle).not.toBe(busy);
  await until(async () => (await shellState(flint, session.id, idle)) === 'prompt');
  await tab(page, idle).getByTestId('close-terminal').click();
  await expect(tab(page, idle)).toHaveCount(0);
  await expect(dialog).toHaveCount(0);

  // Confirmed: the busy one goes, its command with it.
  await tab(page, busy).getByTestId('close-terminal').click();
  await dialog.getByTestId('close-terminal-confirm').click();
  await expect(tab(page, busy)).toHaveCount(0);
});

test('the active tab survives a reload', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-reload-tab' });
  await page.goto(`/s/${session.id}`);
  const first = await waitForPrompt(page);
  await page.getByTestId('new-terminal').click();
  await expect(page.getByTestId('terminal-tab')).toHaveCount(2);
  const second = await waitForPrompt(page);
  expect(second).not.toBe(first);
  await expect(tab(page, second)).toHaveAttribute('data-active', 'true');
  await page.reload();
  await expect(page.getByTestId('terminal-tab')).toHaveCount(2);
  await expect(tab(page, second)).toHaveAttribute('data-active', 'true');
  await expect(tab(page, first)).toHaveAttribute('data-active', 'false');
  // And the browser tab too.
  await page.getByTestId('browser-tab').first().click();
  await page.reload();
  await expect(page.getByTestId('browser-panel')).toBeVisible();
});

test('the Activity panel shows names whole and what people did in words', async ({ page, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-activity-words' });
  const name = 'nightly-refactoring-agent-for-the-payments-service';
  const made = await flint.api('POST', '/api/tokens', { name, session_id: session.id });
  expect(made.status).toBe(201);
  const ran = await flint.api('POST', `/api/sessions/${session.id}/exec`, { argv: ['true'] });
  expect(ran.status).toBe(200);
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  const panel = page.getByTestId('activity-panel');
  const entries = panel.getByTestId('activity-entry');
  const token = entries.and(page.locator('[data-kind="token.create"]'));
  await expect(token.getByTestId('activity-what')).toHaveText('made an agent token');
  await expect(token.getByTestId('activity-summary')).toHaveText(`“${name}”`);
  await expect(entries.and(page.locator('[data-kind="exec"]')).getByTestId('activity-summary')).toHaveText('true');
  for (const text of await entries.allInnerTexts()) expect(text).not.toMatch(/[{}]/);
  // Nothing is cut off: every name, actor and summary shows whole, the token's too.
  await expect(panel.getByTestId('agent-token')).toContainText(name);
  const clipped = await panel.evaluate((panel) =>
    [...panel.querySelectorAll('[data-testid="activity-entry"] *, [data-testid="agent-token"] *')]
      .filter((el) => el.children.length === 0 && el.scrollWidth > el.clientWidth + 1)
      .map((el) => el.textContent),
  );
  expect(clipped).toEqual([]);
  await shot(page, 'activity-words');
});

test('at 1280 px with every panel shown the terminal keeps 80 columns, and panels resize by dragging', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-panels' });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page);
  for (const panel of ['files-panel', 'ports-panel', 'activity-panel']) await expect(page.getByTestId(panel)).toBeVisible();
  const cols = async () => page.evaluate((id) => window.__flintTerminals[id].cols, id);
  await until(async () => (await cols()) >= 80, { message: async () => `the terminal has ${await cols()} columns` });
  await shot(page, 'panels-1280');

  // Dragging the files column's edge widens it (and the terminal narrows).
  const files = page.getByTestId('files-panel');
  const before = (await files.boundingBox()).width;
  const handle = await page.getByTestId('files-splitter').boundingBox();
  await page.mouse.move(handle.x + handle.width / 2, handle.y + 200);
  await page.mouse.down();
  await page.mouse.move(handle.x + 120, handle.y + 200, { steps: 5 });
  await page.mouse.up();
  await until(async () => (await files.boundingBox()).width > before + 100);
  // Kept across a reload.
  await page.reload();
  await waitForPrompt(page, id);
  expect((await page.getByTestId('files-panel').boundingBox()).width).toBeGreaterThan(before + 100);
  // And hidden with its toggle, the terminal gets the room.
  await page.getByTestId('files-toggle').click();
  await expect(page.getByTestId('files-panel')).toHaveCount(0);
});
