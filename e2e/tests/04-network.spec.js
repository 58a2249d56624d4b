// Network loss under a running command: the terminal reconnects and resumes where it left
// off — every output line exactly once, nothing lost, nothing doubled.
import { test, expect, shot } from './fixtures.js';
import { waitForPrompt, waitForLine, typeCommand, bufferLines, terminalInfo } from '../lib/terminal.js';

const LINES = 400;

test('a cut connection comes back and the output continues with no line lost or repeated', async ({ page, flint, sessions }) => {
  test.setTimeout(90_000);
  const session = await sessions.create({ name: 'e2e-network' });
  await page.goto(`/s/${session.id}`);
  const terminal = await waitForPrompt(page);
  await expect(page.getByTestId('status-connection')).toHaveText('connected');

  // The whole run must fit in the scrollback for the count below to mean anything.
  const info = await terminalInfo(page, terminal);
  expect(info.scrollback, 'xterm scrollback must hold the whole run').toBeGreaterThanOrEqual(2000);

  // One process prints every line: a shell loop forking `sleep` per line runs at gVisor's
  // process-creation speed (40-100 ms a line under load), which is not what this tests.
  await typeCommand(
    page,
    `python3 -c "import time; [print(f'line-{i}', flush=True) or time.sleep(0.03) for i in range(1, ${LINES + 1})]"; echo fin-$((2+2))`,
  );
  await waitForLine(page, terminal, 'line-1');
  await page.waitForTimeout(1000);

  flint.relay.cut();
  try {
    await expect(page.getByTestId('status-connection')).toHaveText(/^(reconnecting|offline)$/, { timeout: 5_000 });
    await shot(page, 'reconnect');
    // The loop must still be running while the browser is away, or nothing is tested.
    const during = await bufferLines(page, terminal);
    expect(during.includes('fin-4'), 'the loop finished before the cut; make it longer').toBe(false);
    await page.waitForTimeout(2000);
  } finally {
    flint.relay.restore();
  }

  await waitForLine(page, terminal, 'fin-4', { timeout: 45_000 });
  await expect(page.getByTestId('status-connection')).toHaveText('connected');

  const lines = await bufferLines(page, terminal);
  const counts = new Map();
  for (const line of lines) if (/^line-\d+$/.test(line)) counts.set(line, (counts.get(line) || 0) + 1);
  const missing = [];
  const doubled = [];
  for (let i = 1; i <= LINES; i++) {
    const n = counts.get(`line-${i}`) || 0;
    if (n === 0) missing.push(i);
    if (n > 1) doubled.push(`${i}×${n}`);
  }
  const extra = [...counts.keys()].filter((l) => Number(l.slice(5)) > LINES || Number(l.slice(5)) < 1);
  expect({ missing, doubled, extra }).toEqual({ missing: [], doubled: [], extra: [] });
  expect(lines.filter((l) => l === 'fin-4')).toHaveLength(1);
});
