// UI bench: from the click on "Create" (image test) to a shell prompt in the workspace's
// xterm, through the real app in headless Chromium against a real `flint serve`.
// Writes target/bench/ui.json and prints `ui.create_to_prompt p50 X ms`.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from '@playwright/test';
import { REPO, checkPrerequisites, ensureTestImage, startFlint, chromiumLaunchOptions } from '../lib/flint.js';
import { waitForPrompt } from '../lib/terminal.js';

const RUNS = 10;
const t0 = performance.now();
const progress = (m) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${m}\n`);

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted, p) {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

const round3 = (x) => Math.round(x * 1000) / 1000;

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

async function main() {
  checkPrerequisites();
  await ensureTestImage();
  const flint = await startFlint({ name: 'bench' });
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

    const sorted = [...samples].sort((a, b) => a - b);
    const metric = {
      name: 'ui.create_to_prompt',
      unit: 'ms',
      p50: round3(percentile(sorted, 50)),
      p95: round3(percentile(sorted, 95)),
      p99: round3(percentile(sorted, 99)),
      n: sorted.length,
    };
    const out = path.join(REPO, 'target/bench/ui.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify({ metrics: [metric] }, null, 2)}\n`);
    console.log(`ui.create_to_prompt p50 ${metric.p50} ms`);
  } finally {
    if (browser) await browser.close();
    await flint.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
