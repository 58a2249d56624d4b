// Files in the UI: the Files panel lists /workspace, a file opens in the editor (Monaco) with
// the highlighting of its type, Ctrl+S saves it and `cat` in the shared terminal shows the
// change; a change made in the terminal while the file is open is flagged (never overwritten)
// and offers "Reload from disk" or "Overwrite"; files are created, renamed, deleted and
// uploaded from the tree; a binary and a large file are refused by the editor and download.
import fs from 'node:fs';
import { test, expect, shot } from './fixtures.js';
import { waitForPrompt, waitForLine, typeCommand } from '../lib/terminal.js';

const row = (page, path) => page.locator(`[data-testid="file-row"][data-path="${path}"]`);
const fileTab = (page, path) => page.locator(`[data-testid="file-tab"][data-path="${path}"]`);

/** The text in the editor (Monaco's model of the file shown). */
const editorText = (page) => page.evaluate(() => window.__flintEditor?.getModel()?.getValue() ?? null);

/** Runs `sh -c script` in the session through the API; its stdout. */
async function sh(flint, session, script) {
  const reply = await flint.api('POST', `/api/sessions/${session.id}/exec`, { argv: ['sh', '-c', script] });
  expect(reply.status, reply.text).toBe(200);
  return reply.json.stdout;
}

test('a file opens in the editor, saves with Ctrl+S to what cat shows, and a change on disk is flagged, never overwritten', async ({ page, flint, sessions }) => {
  test.setTimeout(120_000);
  const session = await sessions.create({ name: 'e2e-files' });
  await flint.writeFile(session.id, '/workspace/notes.txt', 'first line\n');
  await flint.writeFile(session.id, '/workspace/src/app.py', 'def main():\n    return 42\n');
  await page.goto(`/s/${session.id}`);
  const terminal = await waitForPrompt(page);

  // The panel lists /workspace: directories first.
  const panel = page.getByTestId('files-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('file-name')).toHaveText(['src', 'notes.txt']);

  // Open it: a tab, the editor, the text.
  await row(page, '/workspace/notes.txt').click();
  const tab = fileTab(page, '/workspace/notes.txt');
  await expect(tab).toHaveAttribute('data-active', 'true');
  const editor = page.getByTestId('editor');
  await expect(editor).toBeVisible();
  await expect.poll(() => editorText(page)).toBe('first line\n');
  const status = page.getByTestId('editor-status');
  await expect(status).toHaveAttribute('data-state', 'saved');

  // Change it: marked unsaved; Ctrl+S saves it.
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type('edited in the browser');
  await page.keyboard.press('Enter');
  await expect(tab.getByTestId('file-tab-dirty')).toBeVisible();
  await expect(status).toHaveAttribute('data-state', 'dirty');
  await page.keyboard.press('Control+s');
  await expect(status).toHaveAttribute('data-state', 'saved');
  await expect(tab.getByTestId('file-tab-dirty')).toHaveCount(0);
  await shot(page, 'files');

  // The shared shell sees it.
  await page.getByTestId('terminal-tab').first().click();
  await expect(page.getByTestId('editor-area')).toBeHidden();
  await typeCommand(page, 'cat /workspace/notes.txt');
  await waitForLine(page, terminal, 'edited in the browser');

  // Highlighting by type: a Python file gets Python's tokens.
  await row(page, '/workspace/src').click();
  await row(page, '/workspace/src/app.py').click();
  await expect.poll(() => editorText(page)).toBe('def main():\n    return 42\n');
  expect(await page.evaluate(() => window.__flintEditor.getModel().getLanguageId())).toBe('python');
  await expect
    .poll(() => editor.locator('.view-line span[class*="mtk"]').evaluateAll((spans) => new Set(spans.map((s) => s.className)).size))
    .toBeGreaterThan(2);

  // The shell changes notes.txt while it is open and shown: the editor flags it.
  await page.getByTestId('terminal-tab').first().click();
  await typeCommand(page, '(sleep 1; echo from the shell >> /workspace/notes.txt) &');
  await tab.click();
  const conflict = page.getByTestId('editor-conflict');
  await expect(conflict).toBeVisible({ timeout: 10_000 });
  await expect(conflict).toHaveAttribute('data-disk', 'changed');
  await expect(tab.getByTestId('file-tab-changed')).toBeVisible();

  // An unsaved edit, and Ctrl+S: refused, the shell's change stays on disk.
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type('typed after the change');
  await page.keyboard.press('Control+s');
  await expect(status).toHaveAttribute('data-state', 'dirty');
  await expect(conflict).toBeVisible();
  await shot(page, 'files-conflict');
  expect(await sh(flint, session, 'cat /workspace/notes.txt')).toBe('first line\nedited in the browser\nfrom the shell\n');

  // "Reload from disk": the editor shows the file as it is; nothing unsaved, no flag.
  await page.getByTestId('editor-reload').click();
  await expect(conflict).toHaveCount(0);
  await expect.poll(() => editorText(page)).toBe('first line\nedited in the browser\nfrom the shell\n');
  await expect(status).toHaveAttribute('data-state', 'saved');
  await expect(tab.getByTestId('file-tab-changed')).toHaveCount(0);

  // Changed again (by an agent, say); this time "Overwrite" keeps the editor's text.
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type('mine');
  await sh(flint, session, 'echo theirs >> /workspace/notes.txt');
  await expect(conflict).toBeVisible({ timeout: 10_000 });
  await page.getByTestId('editor-overwrite').click();
  await expect(conflict).toHaveCount(0);
  await expect(status).toHaveAttribute('data-state', 'saved');
  expect(await sh(flint, session, 'cat /workspace/notes.txt')).toBe('first line\nedited in the browser\nfrom the shell\nmine');

  // Deleted in the shell: flagged as deleted.
  await sh(flint, session, 'rm /workspace/notes.txt');
  await expect(conflict).toHaveAttribute('data-disk', 'deleted', { timeout: 10_000 });
  await expect(page.getByTestId('editor-reload')).toHaveCount(0);
});

test('files are created, renamed, deleted and uploaded from the tree', async ({ page, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-files-tree' });
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  const panel = page.getByTestId('files-panel');
  await expect(panel.getByTestId('files-empty')).toBeVisible();

  // A new file: named in place, then open in the editor.
  await panel.getByTestId('files-new-file').click();
  const name = panel.getByTestId('file-name-input');
  await name.fill('hello.py');
  await name.press('Enter');
  await expect(row(page, '/workspace/hello.py')).toBeVisible();
  const tab = fileTab(page, '/workspace/hello.py');
  await expect(tab).toHaveAttribute('data-active', 'true');
  await expect(page.getByTestId('editor-status')).toHaveAttribute('data-state', 'saved');
  await page.getByTestId('editor').click();
  await page.keyboard.type('answer = 42');
  await page.keyboard.press('Control+s');
  await expect(page.getByTestId('editor-status')).toHaveAttribute('data-state', 'saved');
  expect(await sh(flint, session, 'cat /workspace/hello.py')).toBe('answer = 42');

  // A new folder.
  await panel.getByTestId('files-new-folder').click();
  await name.fill('lib');
  await name.press('Enter');
  await expect(row(page, '/workspace/lib')).toHaveAttribute('data-kind', 'dir');
  expect(await sh(flint, session, 'test -d /workspace/lib && echo dir')).toBe('dir\n');

  // A new file (in lib/, the selected folder) whose name someone just took in the shell,
  // before the tree shows it: refused with a message, and their file is left as it is.
  await sh(flint, session, 'echo theirs > /workspace/lib/taken.txt');
  await panel.getByTestId('files-new-file').click();
  await name.fill('taken.txt');
  await name.press('Enter');
  await expect(page.getByTestId('error-banner')).toContainText('cannot create taken.txt');
  await expect(page.getByTestId('error-banner')).toContainText('already exists');
  expect(await sh(flint, session, 'cat /workspace/lib/taken.txt')).toBe('theirs\n');

  // Rename: the open tab follows the file, and its language its new name.
  await row(page, '/workspace/hello.py').getByTestId('file-rename').click();
  await expect(name).toHaveValue('hello.py');
  await name.fill('main.rs');
  await name.press('Enter');
  await expect(row(page, '/workspace/main.rs')).toBeVisible();
  await expect(row(page, '/workspace/hello.py')).toHaveCount(0);
  await expect(fileTab(page, '/workspace/main.rs')).toHaveAttribute('data-active', 'true');
  expect(await page.evaluate(() => window.__flintEditor.getModel().getLanguageId())).toBe('rust');
  expect(await sh(flint, session, 'ls /workspace')).toBe('lib\nmain.rs\n');

  // Delete, confirmed in the row: the file goes, and its tab.
  await row(page, '/workspace/main.rs').getByTestId('file-delete').click();
  await expect(panel.getByTestId('file-delete-ask')).toContainText('Delete main.rs?');
  await panel.getByTestId('file-delete-cancel').click();
  await expect(row(page, '/workspace/main.rs')).toBeVisible();
  await row(page, '/workspace/main.rs').getByTestId('file-delete').click();
  await panel.getByTestId('file-delete-confirm').click();
  await expect(row(page, '/workspace/main.rs')).toHaveCount(0);
  await expect(fileTab(page, '/workspace/main.rs')).toHaveCount(0);
  await expect(page.getByTestId('terminal')).toBeVisible();
  expect(await sh(flint, session, 'ls /workspace')).toBe('lib\n');

  // Upload into the selected folder.
  await row(page, '/workspace/lib').click();
  await panel.getByTestId('files-upload-input').setInputFiles({
    name: 'up.txt',
    mimeType: 'text/plain',
    buffer: Buffer.from('uploaded\n'),
  });
  await expect(row(page, '/workspace/lib/up.txt')).toBeVisible();
  expect(await sh(flint, session, 'cat /workspace/lib/up.txt')).toBe('uploaded\n');

  // A file the shell makes appears by itself.
  await sh(flint, session, 'touch /workspace/from-shell.txt');
  await expect(row(page, '/workspace/from-shell.txt')).toBeVisible({ timeout: 10_000 });

  // A folder with everything in it.
  await row(page, '/workspace/lib').getByTestId('file-delete').click();
  await expect(panel.getByTestId('file-delete-ask')).toContainText('Delete lib and everything in it?');
  await panel.getByTestId('file-delete-confirm').click();
  await expect(row(page, '/workspace/lib')).toHaveCount(0);
  expect(await sh(flint, session, 'ls /workspace')).toBe('from-shell.txt\n');

  // All of /workspace as a tarball.
  const [tarball] = await Promise.all([page.waitForEvent('download'), panel.getByTestId('files-download-all').click()]);
  const tar = fs.readFileSync(await tarball.path());
  expect(tar.subarray(257, 262).toString()).toBe('ustar');
  expect(tar.includes(Buffer.from('from-shell.txt'))).toBe(true);
});

test('binary and large files are refused by the editor with a message and still download', async ({ page, flint, sessions }) => {
  const session = await sessions.create({ name: 'e2e-files-binary' });
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0xff, 0x00]);
  await flint.writeFile(session.id, '/workspace/logo.png', png);
  await sh(flint, session, 'head -c 6000000 /dev/zero | tr "\\0" a > /workspace/big.log');
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);

  await row(page, '/workspace/logo.png').click();
  const refused = page.getByTestId('editor-refused');
  await expect(refused).toContainText('binary');
  await expect(page.getByTestId('editor')).toBeHidden();
  await expect(fileTab(page, '/workspace/logo.png')).toHaveAttribute('data-active', 'true');
  await shot(page, 'files-binary');

  // Its download link gives the very bytes.
  const [download] = await Promise.all([page.waitForEvent('download'), refused.getByTestId('editor-refused-download').click()]);
  expect(download.suggestedFilename()).toBe('logo.png');
  expect(fs.readFileSync(await download.path()).equals(png)).toBe(true);

  // Too large: refused before it is read; the tree's download works too.
  await row(page, '/workspace/big.log').click();
  await expect(refused).toContainText('too large');
  await expect(refused).toContainText('5.7 MB');
  const [big] = await Promise.all([page.waitForEvent('download'), row(page, '/workspace/big.log').getByTestId('file-download').click()]);
  expect(fs.statSync(await big.path()).size).toBe(6_000_000);
});
