// Full-screen programs and resizing: the PTY follows the browser window.
import { test, expect, shot } from './fixtures.js';
import { until, waitForPrompt, waitForLine, typeCommand, terminalInfo, screen } from '../lib/terminal.js';

/** The terminal's size once it has stopped changing (fit runs after a resize). */
async function settledSize(page, id, previous) {
  let last = null;
  let stableSince = 0;
  return until(
    async () => {
      const { rows, cols } = await terminalInfo(page, id);
      const changed = previous && (rows !== previous.rows || cols !== previous.cols);
      if (!last || last.rows !== rows || last.cols !== cols) {
        last = { rows, cols };
        stableSince = Date.now();
        return null;
      }
      return (!previous || changed) && Date.now() - stableSince > 400 ? last : null;
    },
    { timeout: 10_000, message: () => `the terminal did not settle at a new size (last ${JSON.stringify(last)})` },
  );
}

/** The shell's idea of its size, as the PTY reports it, checked against the xterm's. */
async function expectPtySize(page, id, size, tag) {
  await typeCommand(page, `echo ${tag}-$(stty size | tr ' ' x)`);
  await waitForLine(page, id, `${tag}-${size.rows}x${size.cols}`);
}

test('vi and top fill the window, and the PTY follows a resize', async ({ page, sessions }) => {
  test.setTimeout(90_000);
  const session = await sessions.create({ name: 'e2e-resize' });
  await page.setViewportSize({ width: 1000, height: 700 });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page);
  const before = await settledSize(page, id);
  await expectPtySize(page, id, before, 'before');

  // vi draws a `~` at the start of every row below the (empty) first line, up to its
  // status line (its intro text sits on those rows too).
  await typeCommand(page, 'vi');
  const tildes = async () => {
    const s = await screen(page, id);
    return s.type === 'alternate' ? s.rows.filter((r) => r.startsWith('~')).length : -1;
  };
  await until(async () => (await tildes()) === before.rows - 2, {
    timeout: 10_000,
    message: async () => `vi did not fill ${before.rows} rows (${await tildes()} tildes)`,
  });
  await shot(page, 'vim');

  await page.setViewportSize({ width: 1400, height: 900 });
  const after = await settledSize(page, id, before);
  expect(after.rows).toBeGreaterThan(before.rows);
  expect(after.cols).toBeGreaterThan(before.cols);
  // vi got SIGWINCH and redrew at the new height.
  await until(async () => (await tildes()) === after.rows - 2, {
    timeout: 10_000,
    message: async () => `vi did not redraw to ${after.rows} rows (${await tildes()} tildes)`,
  });

  await page.keyboard.press('Escape');
  await page.keyboard.type(':q!');
  await page.keyboard.press('Enter');
  await waitForPrompt(page, id);
  await expectPtySize(page, id, after, 'after');

  // top: its header on the first row, its process table below, at the new width.
  await typeCommand(page, 'top -d 1');
  await until(
    async () => {
      const s = await screen(page, id);
      return s.rows[0].startsWith('top -') && s.rows.some((r) => /PID\s+USER/.test(r));
    },
    { timeout: 10_000, message: async () => `top did not draw:\n${(await screen(page, id)).rows.join('\n')}` },
  );
  await shot(page, 'top');
  await page.keyboard.press('q');
  await waitForPrompt(page, id);
});
