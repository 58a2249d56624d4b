// Once per run: the binaries, the web app and the test image must be there.
import fs from 'node:fs';
import { checkPrerequisites, ensureTestImage, E2E_OUT } from '../lib/flint.js';

export default async function globalSetup() {
  checkPrerequisites();
  fs.mkdirSync(E2E_OUT, { recursive: true });
  await ensureTestImage();
}
