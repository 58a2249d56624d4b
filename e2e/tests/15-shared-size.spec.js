// The shared terminal's size (tmux's "latest"): whoever typed last sizes the PTY, a viewer
// never does, and every browser shows exactly the PTY's rows and columns: letterboxed in a
// larger pane, scrolled in a smaller one. A guest's small window no longer shrinks the
// owner's full-screen programs.
import { test, expect, freshContext, shot } from './fixtures.js';
import { until, waitForPrompt, typeCommand, terminalInfo, bufferLines } from '../lib/terminal.js';
import { makeInvite, join } from '../lib/people.js';

/** The PTY's size as the shell sees it (`stty size`), typed from `page`: `{ rows, cols }`. */
async function sttySize(page, id, tag) {
  await typeCommand(page, `echo ${tag}-$(stty size | tr ' ' x)`);
  const pattern = new RegExp(`^${tag}-(\\d+)x(\\d+)$`);
  const match = await until(async () => (await bufferLines(page, id))?.map((l) => l.match(pattern)).find(Boolean), {
    message: `no ${tag}-ROWSxCOLS line in terminal ${id}`,
  });
  return { rows: Number(match[1]), cols: Number(match[2]) };
}

/** Waits until the xterm on `page` has exactly `size`. */
async function expectShown(page, id, size, who) {
  await until(
    async () => {
      const info = await terminalInfo(page, id);
      return info && info.rows === size.rows && info.cols === size.cols;
    },
    { message: async () => `${who}'s xterm is ${JSON.stringify(await terminalInfo(page, id))}, not ${JSON.stringify(size)}` },
  );
}

/** How the terminal sits in its pane: the scroller's box and the xterm element's. */
async function layout(page) {
  return page.getByTestId('terminal').getByTestId('terminal-scroller').evaluate((scroller) => {
    const term = scroller.firstElementChild;
    return {
      paneWidth: scroller.clientWidth,
      paneHeight: scroller.clientHeight,
      scrollWidth: scroller.scrollWidth,
      scrollHeight: scroller.scrollHeight,
      termWidth: term.offsetWidth,
      termHeight: term.offsetHeight,
      overflowX: getComputedStyle(scroller).overflowX,
    };
  });
}

test('the last typist sizes the shared terminal, a viewer never does, and smaller windows scroll', async ({ page, browser, flint, sessions }) => {
  test.setTimeout(120_000);
  const session = await sessions.create({ name: 'e2e-shared-size' });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page);
  const owner = await sttySize(page, id, 'owner');
  await expectShown(page, id, owner, 'the owner');

  await page.getByTestId('share-open').click();
  const editorUrl = await makeInvite(page, 'editor');
  const viewerUrl = await makeInvite(page, 'viewer');
  await page.getByTestId('share-done').click();
  const small = { viewport: { width: 760, height: 460 } };
  const editor = await join(freshContext, browser, flint, editorUrl, 'Grace', small);
  const viewer = await join(freshContext, browser, flint, viewerUrl, 'Linus', { viewport: { width: 640, height: 420 } });
  try {
    await waitForPrompt(editor.page, id);
    await waitForPrompt(viewer.page, id);

    // The guests' smaller windows shrink nothing: the PTY is still the owner's, and every
    // browser shows that size, the small ones scrolled.
    expect(await sttySize(page, id, 'still')).toEqual(owner);
    await expectShown(editor.page, id, owner, 'the editor');
    await expectShown(viewer.page, id, owner, 'the viewer');
    const scrolled = await layout(editor.page);
    expect(scrolled.overflowX).toBe('auto');
    expect(scrolled.scrollWidth).toBeGreaterThan(scrolled.paneWidth);
    await expect(editor.page.getByTestId('status-size')).toContainText('sized by the last typist');
    await shot(editor.page, 'shared-size-scrolled');

    // The editor types: now their window sizes the PTY; the owner's larger pane letterboxes
    // it (the terminal top-left at that size, blank around it), the viewer follows too.
    const edited = await sttySize(editor.page, id, 'editor');
    expect(edited.cols).toBeLessThan(owner.cols);
    expect(edited.rows).toBeLessThan(owner.rows);
    await expectShown(page, id, edited, 'the owner');
    await expectShown(viewer.page, id, edited, 'the viewer');
    await until(async () => {
      const box = await layout(page);
      return box.termWidth < box.paneWidth - 100 && box.termHeight < box.paneHeight - 50 && box.scrollWidth <= box.paneWidth;
    }, { message: async () => `the owner's terminal is not letterboxed: ${JSON.stringify(await layout(page))}` });
    await shot(page, 'shared-size-letterboxed');

    // Typing takes the PTY back to the owner's size.
    expect(await sttySize(page, id, 'back')).toEqual(owner);
    await expectShown(editor.page, id, owner, 'the editor');
  } finally {
    await editor.context.close();
    await viewer.context.close();
  }
});
