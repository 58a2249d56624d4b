// The shared browser in the UI: the Browser tab shows the sandbox's headless Chromium live on
// a canvas; a URL typed in its bar loads there, a click on the canvas follows a link, and the
// Ports panel opens a port in it. The page's pixels are read back from the canvas.
import { test, expect, shot } from './fixtures.js';
import { waitForPrompt, typeCommand } from '../lib/terminal.js';

/** A page split in two: a red link over the top-left quarter on a blue page. */
const INDEX = `<!doctype html><html><head><title>Flint index</title></head>
<body style="margin:0;background:#0000ff">
<a href="next.html" style="position:fixed;left:0;top:0;width:50vw;height:50vh;background:#ff0000">next</a>
</body></html>`;

/** Where the link goes: all green. */
const NEXT = `<!doctype html><html><head><title>Flint next</title></head>
<body style="margin:0;background:#00ff00"></body></html>`;

/** The colour of the canvas at a fraction of its width and height, as [r, g, b]. */
async function pixel(canvas, fx, fy) {
  return canvas.evaluate(
    (c, [fx, fy]) => {
      const data = c.getContext('2d').getImageData(Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data;
      return [data[0], data[1], data[2]];
    },
    [fx, fy],
  );
}

/** Waits until the canvas shows roughly `rgb` at (fx, fy) (JPEG shifts colours a little). */
async function expectColour(canvas, fx, fy, rgb) {
  await expect
    .poll(async () => {
      const got = await pixel(canvas, fx, fy);
      return got.every((v, i) => Math.abs(v - rgb[i]) < 40) ? 'match' : `rgb(${got.join(', ')})`;
    }, { timeout: 30_000, message: `canvas at (${fx}, ${fy}) should be rgb(${rgb.join(', ')})` })
    .toBe('match');
}

test('the Browser panel shows the shared browser live and follows a click on the canvas', async ({ page, flint, sessions }) => {
  test.setTimeout(150_000);
  const session = await sessions.create({ name: 'e2e-browser', image: 'default', cpus: 1, memory_mb: 2048 });
  await flint.writeFile(session.id, '/workspace/site/index.html', INDEX);
  await flint.writeFile(session.id, '/workspace/site/next.html', NEXT);
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  await typeCommand(page, 'cd /workspace/site && python3 -m http.server 8000');
  await expect(page.getByTestId('ports-panel').getByTestId('port-row-8000')).toBeVisible({ timeout: 30_000 });

  // Open the Browser tab and type a URL (no scheme: http is assumed).
  await page.getByTestId('browser-tab').click();
  const panel = page.getByTestId('browser-panel');
  await expect(panel).toBeVisible();
  const url = panel.getByTestId('browser-url');
  await url.fill('127.0.0.1:8000/index.html');
  await url.press('Enter');
  const canvas = panel.getByTestId('browser-canvas');
  // The page renders on the canvas: the red link top left, the blue page bottom right.
  await expectColour(canvas, 0.25, 0.25, [255, 0, 0]);
  await expectColour(canvas, 0.75, 0.75, [0, 0, 255]);
  await expect(url).toHaveValue('http://127.0.0.1:8000/index.html');
  await expect(panel.getByTestId('browser-tab').first()).toHaveText(/Flint index/);
  expect(Number(await canvas.getAttribute('data-frames'))).toBeGreaterThan(0);
  await shot(page, 'browser');

  // A click on the link, on the canvas: the shared browser navigates, and this panel sees it.
  const box = await canvas.boundingBox();
  await page.mouse.click(box.x + box.width * 0.2, box.y + box.height * 0.2);
  await expectColour(canvas, 0.75, 0.75, [0, 255, 0]);
  await expect(url).toHaveValue('http://127.0.0.1:8000/next.html');
  await expect(panel.getByTestId('browser-driver')).toHaveText('You are driving');
  await expect(panel.getByTestId('browser-driver')).toHaveAttribute('data-kind', 'person');

  // Back, from the toolbar.
  await panel.getByTestId('browser-back').click();
  await expect(url).toHaveValue('http://127.0.0.1:8000/index.html');
  await expectColour(canvas, 0.75, 0.75, [0, 0, 255]);

  // The URL bar again, then away to a terminal tab: the shell is back, the panel is gone.
  await url.fill('http://127.0.0.1:8000/next.html');
  await url.press('Enter');
  await expectColour(canvas, 0.75, 0.75, [0, 255, 0]);
  await page.getByTestId('terminal-tab').first().click();
  await expect(panel).toHaveCount(0);
  await expect(page.getByTestId('terminal')).toBeVisible();

  // The Ports panel opens the port in the shared browser (its `/` serves index.html).
  await page.getByTestId('port-browser-8000').click();
  await expect(page.getByTestId('browser-panel')).toBeVisible();
  await expect(page.getByTestId('browser-url')).toHaveValue('http://127.0.0.1:8000/');
  await expectColour(page.getByTestId('browser-canvas'), 0.75, 0.75, [0, 0, 255]);
});
