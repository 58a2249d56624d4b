// Once per run: the binaries, the web app and the images the tests use must be there.
import fs from 'node:fs';
import path from 'node:path';
import { checkPrerequisites, ensureImage, ensureTestImage, EXTRA_IMAGES, E2E_OUT } from '../lib/flint.js';

export default async function globalSetup() {
  checkPrerequisites();
  fs.mkdirSync(E2E_OUT, { recursive: true });
  // Server logs of this run only (one per worker; a failed test restarts its worker).
  fs.rmSync(path.join(E2E_OUT, 'logs'), { recursive: true, force: true });
  await ensureTestImage();
  // One at a time (two cores); each is a no-op when its spec's image is cached.
  for (const image of EXTRA_IMAGES) await ensureImage(image);
}
