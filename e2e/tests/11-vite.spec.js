// A Vite 5 dev server in a session (image `vite`: Vite installed at build time, since a
// sandbox under test has no registry access), opened from the Ports panel: an edit in the
// sandbox reaches the open preview tab through Vite's HMR websocket, which runs through
// Flint's preview proxy — a hot update without a reload, then a full reload Vite asks for.
import { test, expect, markDocument, shot } from './fixtures.js';
import { waitForPrompt, typeCommand } from '../lib/terminal.js';

const VITE = '/opt/vite/node_modules/.bin/vite';

const indexHtml = (title) => `<!doctype html>
<html>
  <head><meta charset="utf-8"><title>flint vite</title></head>
  <body>
    <h1 id="title">${title}</h1>
    <p id="app"></p>
    <script type="module" src="/main.js"></script>
  </body>
</html>
`;

// Self-accepting: an edit re-runs this module in the page (a hot update, no reload).
const mainJs = (text) => `document.querySelector('#app').textContent = ${JSON.stringify(text)};
if (import.meta.hot) import.meta.hot.accept();
`;

test('a Vite dev server in the sandbox updates its open preview tab when a file changes', async ({ page, flint, sessions }) => {
  test.setTimeout(120_000);
  const session = await sessions.create({ name: 'e2e-vite', image: 'vite', cpus: 1, memory_mb: 1024 });
  await flint.writeFile(session.id, '/workspace/site/index.html', indexHtml('Vite in Flint'));
  await flint.writeFile(session.id, '/workspace/site/main.js', mainJs('first version'));

  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  await typeCommand(page, `${VITE} /workspace/site --host 127.0.0.1 --port 5173 --strictPort`);

  const row = page.getByTestId('ports-panel').getByTestId('port-row-5173');
  await expect(row).toBeVisible({ timeout: 45_000 });
  await expect(row.getByTestId('port-process-5173')).toHaveText('node');

  // What the preview tab logs (Vite's client says when its websocket is up).
  const logs = [];
  page.context().on('console', (m) => logs.push(m.text()));

  // Open preview: a new tab on the preview host, signed in by a ticket, the page rendered by
  // Vite's client and our module.
  const [preview] = await Promise.all([
    page.context().waitForEvent('page'),
    row.getByTestId('port-open-5173').click(),
  ]);
  // Websockets the tab opens (listening from here on catches at least the one after the
  // reload below).
  const sockets = [];
  preview.on('websocket', (ws) => sockets.push(ws.url()));
  try {
    await preview.waitForLoadState();
    expect(new URL(preview.url()).host).toBe(`5173-${session.id}.preview.localhost:${new URL(flint.url).port}`);
    expect(preview.url()).not.toContain('ticket');
    await expect(preview.locator('#title')).toHaveText('Vite in Flint');
    await expect(preview.locator('#app')).toHaveText('first version', { timeout: 30_000 });
    // "[vite] connected.": the proxy carried the websocket upgrade (with Vite's token, and
    // Vite accepted the Host and Origin it saw). An edit made before that would be missed.
    await expect.poll(() => logs.some((l) => l.includes('[vite] connected')), { timeout: 30_000 }).toBe(true);
    await shot(preview, 'vite-preview');

    // A hot update: the module re-runs in the same document.
    const sameDocument = await markDocument(preview);
    await flint.writeFile(session.id, '/workspace/site/main.js', mainJs('second version'));
    await expect(preview.locator('#app')).toHaveText('second version', { timeout: 30_000 });
    expect(await sameDocument(), 'a hot update, not a reload').toBe(true);

    // index.html changed: Vite tells the page to reload, and it does, by itself.
    await flint.writeFile(session.id, '/workspace/site/index.html', indexHtml('Reloaded by Vite'));
    await expect(preview.locator('#title')).toHaveText('Reloaded by Vite', { timeout: 30_000 });
    expect(await sameDocument(), 'Vite reloaded the page').toBe(false);
    await expect(preview.locator('#app')).toHaveText('second version');
    expect(preview.url()).not.toContain('ticket');
    // The reloaded page's HMR socket went to the preview host (through the proxy), with
    // Vite's token.
    const host = new URL(preview.url()).host;
    await expect.poll(() => sockets.some((u) => u.startsWith(`ws://${host}/?token=`))).toBe(true);
  } finally {
    await preview.close();
  }

  // Stopping Vite takes the row away.
  await page.getByTestId('terminal').click();
  await page.keyboard.press('Control+C');
  await expect(page.getByTestId('ports-panel').getByTestId('port-row-5173')).toHaveCount(0);
});
