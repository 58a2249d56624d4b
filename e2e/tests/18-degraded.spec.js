// The sandbox's agent stops answering under an open workspace (stopped from inside its own
// sandbox for a while, as a stuck guest would be): the page says the session is
// reconnecting and why, keeps its panes, and once the server has its agent back the banner
// goes, the status bar says running and the same shell takes keystrokes again, with
// nothing asked of the person.
import { test, expect, shot } from './fixtures.js';
import { waitForPrompt, waitForLine, typeCommand } from '../lib/terminal.js';

/** Finds the guest agent's pid from inside the sandbox. */
const FIND_AGENT =
  "for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^/opt/flint/guest-agent serve'; then echo ${p#/proc/}; fi; done";

test('a stuck agent shows the workspace as reconnecting, and it comes back by itself', async ({ page, flint, sessions }) => {
  test.setTimeout(150_000);
  const session = await sessions.create({ name: 'e2e-degraded' });
  await page.goto(`/s/${session.id}`);
  const terminal = await waitForPrompt(page);
  await expect(page.getByTestId('status-session')).toHaveText('running');
  await expect(page.getByTestId('session-degraded')).toHaveCount(0);

  const exec = async (script) => {
    const reply = await flint.api('POST', `/api/sessions/${session.id}/exec`, { argv: ['sh', '-c', script], env: {} });
    expect(reply.status, JSON.stringify(reply.json)).toBe(200);
    return reply.json;
  };
  const agent = (await exec(FIND_AGENT)).stdout.trim();
  expect(agent, 'the agent pid').toMatch(/^\d+$/);
  // The stopper waits a second so that this command's own answer leaves the agent first.
  await exec(`setsid -f sh -c 'sleep 1; kill -STOP ${agent}; sleep 25; kill -CONT ${agent}' >/dev/null 2>&1`);

  // Within the keepalive's deadline the page says why, and the panes stay.
  const banner = page.getByTestId('session-degraded');
  await expect(banner).toBeVisible({ timeout: 25_000 });
  await expect(banner).toContainText('Reconnecting to the sandbox');
  await expect(banner).toContainText('agent does not answer');
  await expect(page.getByTestId('status-session')).toHaveText('degraded');
  await expect(page.getByTestId('terminal-tab')).toHaveCount(1);
  await shot(page, 'degraded');

  // Back by itself: no banner, running, and the same shell answers.
  await expect(banner).toHaveCount(0, { timeout: 60_000 });
  await expect(page.getByTestId('status-session')).toHaveText('running');
  await expect(page.getByTestId('status-connection')).toHaveText('connected', { timeout: 20_000 });
  await typeCommand(page, 'echo healed-$((20+22))');
  await waitForLine(page, terminal, 'healed-42', { timeout: 20_000 });
  await shot(page, 'degraded-healed');
});
