// Playwright Test for Flint: the real web app in Debian's headless Chromium against a real
// `flint serve` (started per worker by tests/fixtures.js) with real sandboxes.
import { defineConfig } from '@playwright/test';
import { chromiumLaunchOptions } from './lib/flint.js';

export default defineConfig({
  testDir: './tests',
  globalSetup: './tests/global-setup.js',
  // Two cores, and every test makes real sandboxes: one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: '../target/e2e/results',
  forbidOnly: !!process.env.CI,
  use: {
    browserName: 'chromium',
    launchOptions: chromiumLaunchOptions,
    viewport: { width: 1280, height: 800 },
    actionTimeout: 15_000,
    navigationTimeout: 20_000,
    // Traces cost CPU on two cores: on demand (FLINT_E2E_TRACE=1).
    trace: process.env.FLINT_E2E_TRACE ? 'retain-on-failure' : 'off',
    screenshot: 'only-on-failure',
  },
});
