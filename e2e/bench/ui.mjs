// UI bench, through the real app in headless Chromium against a real `flint serve`:
// - ui.create_to_prompt: from the click on "Create" (image test) to a shell prompt in the
//   workspace's xterm;
// - ui.save_to_shell: from Ctrl+S on a 1 MB file in the editor to `tail` in the session
//   (exec through the API) showing the new content.
// Writes ui.json to $FLINT_BENCH_DIR (`cargo xtask bench` sets it; else target/bench) and
// prints each metric's p50, and lists its server in servers.txt there, which `cargo xtask
// bench` checks for leftovers at the end.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from '@playwright/test';
import { REPO, checkPrerequisites, ensureTestImage, startFlint, chromiumLaunchOptions } from '../lib/flint.js';
import { waitForPrompt } from '../lib/terminal.js';

const RUNS = 10;

/** Saves timed, after one untimed. */
const SAVES = 12;

/** The file the editor saves: 1 MB of text. */
const SAVE_BYTES = 1 << 20;
const t0 = performance.now();
const progress = (m) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${m}\n`);

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted, p) {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

const round3 = (x) => Math.round(x * 1000) / 1000;

const BENCH_DIR = process.env.FLINT_BENCH_DIR || path.join(REPO, 'target/bench');

async function createToPrompt(page, name) {
  await page.goto('/');
  await page.getByTestId('session-list').waitFor();
  await page.getByTestId('create-session').click();
  await page.getByTestId('create-image').selectOption('test');
  await page.getByTestId('create-size').selectOption('small');
  await page.getByTestId('create-name').fill(name);
  const submit = page.getByTestId('create-submit');
  await submit.waitFor();

  const started = performance.now();
  await submit.click();
  const row = page.getByTestId('session-row').filter({ hasText: name });
  await row.and(page.locator('[data-state="running"]')).waitFor({ timeout: 60_000 });
  await row.getByTestId('open-session').click();
  await waitForPrompt(page, undefined, { timeout: 60_000 });
  return performance.now() - started;
}

/** 1 MB of text ending in `marker` (its last line), so `tail` tells one save from another. */
function megabyte(marker) {
  const line = 'the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz\n';
  const tail = `${marker}\n`;
  const body = line.repeat(Math.ceil(SAVE_BYTES / line.length)).slice(0, SAVE_BYTES - tail.length);
  return body + tail;
}

/** Runs `argv` in the session through the API; its stdout. */
async function exec(flint, session, argv) {
  const reply = await flint.api('POST', `/api/sessions/${session}/exec`, { argv });
  if (reply.status !== 200) throw new Error(`exec ${argv.join(' ')}: ${reply.status} ${reply.text}`);
  return reply.json.stdout;
}

/**
 * One save: the editor's text becomes a new 1 MB (set through Monaco's model, as typing a
 * megabyte is not what is measured), then Ctrl+S; ms until `tail` in the sandbox returns
 * the new last line (the exec that saw it is counted whole: an upper bound).
 */
async function saveToShell(page, flint, session, marker) {
  await page.evaluate((text) => window.__flintEditor.getModel().setValue(text), megabyte(marker));
  await page.getByTestId('editor-status').and(page.locator('[data-state="dirty"]')).waitFor();
  const started = performance.now();
  await page.keyboard.press('Control+s');
  for (;;) {
    const seen = await exec(flint, session, ['tail', '-c', '64', '/workspace/bench.txt']);
    if (seen.endsWith(`${marker}\n`)) break;
    if (performance.now() - started > 30_000) throw new Error(`the save of ${marker} never reached the shell`);
  }
  const ms = performance.now() - started;
  await page.getByTestId('editor-status').and(page.locator('[data-state="saved"]')).waitFor();
  return ms;
}

/** `ui.save_to_shell`: a session, `/workspace/bench.txt` open in the editor, SAVES saves. */
async function saveBench(page, flint) {
  const session = (await flint.createSession({ name: 'bench-save' })).id;
  await flint.writeFile(session, '/workspace/bench.txt', megabyte('start'));
  await page.goto(`/s/${session}`);
  await waitForPrompt(page, undefined, { timeout: 60_000 });
  await page.locator('[data-testid="file-row"][data-path="/workspace/bench.txt"]').click();
  await page.getByTestId('editor-status').and(page.locator('[data-state="saved"]')).waitFor({ timeout: 60_000 });
  await page.getByTestId('editor').click();
  await saveToShell(page, flint, session, 'warm-up');
  const samples = [];
  for (let i = 0; i < SAVES; i++) {
    const ms = await saveToShell(page, flint, session, `save-${i}`);
    samples.push(ms);
    progress(`save ${i + 1}/${SAVES}: ${ms.toFixed(1)} ms`);
  }
  await page.goto('about:blank');
  await flint.destroyAllSessions();
  return samples;
}

/** p50/p95/p99 of `samples` as a metric. */
function metricOf(name, samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    name,
    unit: 'ms',
    p50: round3(percentile(sorted, 50)),
    p95: round3(percentile(sorted, 95)),
    p99: round3(percentile(sorted, 99)),
    n: sorted.length,
  };
}

async function main() {
  checkPrerequisites();
  await ensureTestImage();
  const flint = await startFlint({ name: 'bench' });
  // The server's instance, as `flint serve` names it: sha256 of its data directory.
  const instance = crypto.createHash('sha256').update(flint.dataDir).digest('hex').slice(0, 12);
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  const manifest = path.join(BENCH_DIR, 'servers.txt');
  fs.appendFileSync(manifest, `server ${instance} ${flint.dataDir}\n`);
  progress(`flint serve at ${flint.direct} (log ${flint.logPath})`);
  let browser;
  try {
    browser = await chromium.launch(chromiumLaunchOptions);
    const context = await browser.newContext({ baseURL: flint.url, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const signedIn = await page.goto(await flint.newLoginUrl());
    if (!signedIn || !signedIn.ok()) throw new Error('sign-in failed');

    // One untimed run first: the first session of a fresh server warms caches.
    await createToPrompt(page, 'bench-warmup');
    await flint.destroyAllSessions();
    progress('warm-up done');

    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      const ms = await createToPrompt(page, `bench-${i}`);
      samples.push(ms);
      progress(`run ${i + 1}/${RUNS}: ${ms.toFixed(1)} ms`);
      await page.goto('about:blank');
      const failed = await flint.destroyAllSessions();
      if (failed.length) throw new Error(`destroying sessions: ${failed.join(', ')}`);
    }

    const metrics = [metricOf('ui.create_to_prompt', samples)];
    metrics.push(metricOf('ui.save_to_shell', await saveBench(page, flint)));
    const out = path.join(BENCH_DIR, 'ui.json');
    fs.writeFileSync(out, `${JSON.stringify({ metrics }, null, 2)}\n`);
    for (const metric of metrics) console.log(`${metric.name} p50 ${metric.p50} ms`);
  } finally {
    if (browser) await browser.close();
    await flint.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
