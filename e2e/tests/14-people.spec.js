// People in a session: the owner invites an editor and a viewer from the Share dialog; the
// editor joins under a name and types in the shared terminal, which the owner sees; everyone
// sees who is present; the viewer sees the terminal but cannot type, and reads files in a
// read-only editor; revoking the editor's invite drops them at once.
import { test, expect, freshContext, shot } from './fixtures.js';
import { waitForPrompt, waitForLine, typeCommand, countLines } from '../lib/terminal.js';
import { makeInvite, join as joinAs } from '../lib/people.js';

const fileTab = (page, path) => page.locator(`[data-testid="file-tab"][data-path="${path}"]`);

const join = (browser, flint, url, name) => joinAs(freshContext, browser, flint, url, name);

/** The names on a page's presence bar. */
function present(page) {
  return page.getByTestId('presence').getByTestId('avatar');
}

test('an editor and a viewer join through invites, the viewer cannot type, and revoking drops the editor', async ({ page, browser, flint, sessions }) => {
  test.setTimeout(120_000);
  const session = await sessions.create({ name: 'e2e-people' });
  await flint.writeFile(session.id, '/workspace/readme.md', 'shared notes\n');
  await page.goto(`/s/${session.id}`);
  const terminal = await waitForPrompt(page);

  await page.getByTestId('share-open').click();
  const editorUrl = await makeInvite(page, 'editor');
  const viewerUrl = await makeInvite(page, 'viewer');
  await page.getByTestId('share-done').click();

  const editor = await join(browser, flint, editorUrl, 'Grace Hopper');
  const viewer = await join(browser, flint, viewerUrl, 'Linus');
  try {
    // The editor types in the shared terminal; the owner sees it, and who typed.
    await expect(editor.page.getByTestId('my-role')).toHaveText('editor');
    await waitForPrompt(editor.page, terminal);
    await typeCommand(editor.page, 'echo from-grace-$((40+2))');
    await waitForLine(page, terminal, 'from-grace-42');
    await expect(page.getByTestId('tab-typist').getByTestId('avatar')).toHaveAttribute('data-name', 'Grace Hopper');

    // Everyone sees everyone present.
    for (const p of [page, editor.page, viewer.page]) {
      await expect(present(p)).toHaveCount(3);
      await expect(present(p).and(p.locator('[data-name="Grace Hopper"]'))).toHaveText('GH');
      await expect(present(p).and(p.locator('[data-name="admin"]'))).toHaveAttribute('data-role', 'owner');
      await expect(present(p).and(p.locator('[data-name="Linus"]'))).toHaveAttribute('data-role', 'viewer');
    }
    await shot(page, 'people');

    // The viewer sees the terminal but cannot type into it.
    await expect(viewer.page.getByTestId('my-role')).toHaveText('viewer');
    await expect(viewer.page.getByTestId('view-only')).toBeVisible();
    await waitForLine(viewer.page, terminal, 'from-grace-42');
    await expect(viewer.page.getByTestId('new-terminal')).toHaveCount(0);
    await expect(viewer.page.getByTestId('share-open')).toHaveCount(0);
    await typeCommand(viewer.page, 'echo from-linus-$((6*7))');
    await typeCommand(page, 'echo marker-$((2+3))');
    await waitForLine(page, terminal, 'marker-5');
    expect(await countLines(page, terminal, 'from-linus-42')).toBe(0);

    // The viewer reads files but cannot change them: no change buttons, a read-only editor.
    const files = viewer.page.getByTestId('files-panel');
    await expect(files).toBeVisible();
    for (const id of ['files-new-file', 'files-new-folder', 'files-upload']) {
      await expect(files.getByTestId(id)).toBeHidden();
    }
    const readme = files.locator('[data-testid="file-row"][data-path="/workspace/readme.md"]');
    await readme.click();
    await expect(readme.getByTestId('file-rename')).toBeHidden();
    await expect(readme.getByTestId('file-delete')).toBeHidden();
    const modelText = () => viewer.page.evaluate(() => window.__flintEditor?.getModel()?.getValue() ?? null);
    await expect.poll(modelText).toBe('shared notes\n');
    await expect(viewer.page.getByTestId('editor-read-only')).toBeVisible();
    await expect(viewer.page.getByTestId('editor-save')).toBeHidden();
    await viewer.page.getByTestId('editor').click();
    await viewer.page.keyboard.type('viewer was here');
    await viewer.page.keyboard.press('Control+s');
    expect(await modelText()).toBe('shared notes\n');
    await expect(viewer.page.getByTestId('editor-status')).toHaveAttribute('data-state', '');
    await expect(fileTab(viewer.page, '/workspace/readme.md').getByTestId('file-tab-dirty')).toHaveCount(0);
    await shot(viewer.page, 'viewer-files');

    // Revoking the editor's invite drops them at once; the viewer stays.
    await page.getByTestId('share-open').click();
    const dialog = page.getByTestId('share-dialog');
    const editorRow = dialog.locator('[data-testid="invite-row"][data-role="editor"]');
    await expect(editorRow.getByTestId('guest-row')).toHaveAttribute('data-name', 'Grace Hopper');
    await editorRow.getByTestId('invite-revoke').click();
    await editorRow.getByTestId('invite-revoke-confirm').click();
    await expect(editorRow).toHaveCount(0);
    await page.getByTestId('share-done').click();
    await expect(editor.page.getByTestId('access-ended-reason')).toContainText('revoked your invite', { timeout: 15_000 });
    await expect(present(page).and(page.locator('[data-name="Grace Hopper"]'))).toHaveCount(0);
    await expect(present(viewer.page).and(viewer.page.locator('[data-name="admin"]'))).toHaveCount(1);

    // The revoked link lets nobody in.
    const late = await freshContext(browser, { baseURL: flint.url });
    try {
      const latePage = await late.newPage();
      await latePage.goto(editorUrl);
      await latePage.getByTestId('join-name').fill('Mallory');
      await latePage.getByTestId('join-submit').click();
      await expect(latePage.getByTestId('join-error')).toContainText('revoked');
    } finally {
      await late.close();
    }
  } finally {
    await editor.context.close();
    await viewer.context.close();
  }
});
