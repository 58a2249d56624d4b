// Terminal conformance on the driver users get (gVisor, the suite's default) and the image
// they get (`default`): the shell is a real terminal. Ctrl-C and Ctrl-Z reach the foreground
// job, full-screen programs draw and quit, secrets typed at a prompt are not echoed, pagers
// page, and programs that probe the terminal (npm) return to the prompt. Every key goes
// through xterm.js and the terminal websocket, as a person's do.
import { test, expect, shot } from './fixtures.js';
import {
  until, waitForPrompt, waitForLine, typeCommand, screen, bufferLines, tailText, terminalInfo,
} from '../lib/terminal.js';

/** A session of the default image, its terminal open at a prompt. */
async function open(page, sessions, name, fields = {}) {
  const session = await sessions.create({ name, image: 'default', cpus: 1, memory_mb: 1024, ...fields });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page, null, { timeout: 30_000 });
  return { session, id };
}

/** Runs `argv` in the session (not in the terminal) and returns its stdout. */
async function execOut(flint, session, script) {
  const reply = await flint.api('POST', `/api/sessions/${session.id}/exec`, { argv: ['sh', '-c', script] });
  expect(reply.status, reply.text).toBe(200);
  return reply.json.stdout;
}

/** Waits until a process named `name` runs in the session. */
async function waitForProcess(flint, session, name) {
  await until(async () => (await execOut(flint, session, `pgrep -x ${name} || true`)).trim() !== '', {
    timeout: 20_000,
    interval: 300,
    message: `no ${name} process started`,
  });
}

/** Waits until the screen shows a row matching `pattern`; returns the screen. */
async function waitForScreen(page, id, pattern, what) {
  return until(
    async () => {
      const s = await screen(page, id);
      return s && s.rows.some((r) => pattern.test(r)) ? s : null;
    },
    { timeout: 20_000, message: async () => `${what} did not draw:\n${(await screen(page, id)).rows.join('\n')}` },
  );
}

/** The exit status of the last command, through `echo`, with a tag to find it by. */
async function lastStatus(page, id, tag) {
  await typeCommand(page, `echo ${tag}=$?`);
  return until(
    async () => {
      const line = ((await bufferLines(page, id)) || []).find((l) => l.startsWith(`${tag}=`));
      return line && line.slice(tag.length + 1);
    },
    { message: async () => `no ${tag}= line:\n${await tailText(page, id)}` },
  );
}

test('the shell owns its terminal: Ctrl-C interrupts, Ctrl-Z stops and fg resumes', async ({ page, flint, sessions }) => {
  test.setTimeout(120_000);
  const { session, id } = await open(page, sessions, 'e2e-term-signals');

  // A session leader whose controlling terminal is the pty; /dev/tty opens it.
  await typeCommand(page, 'test "$(ps -o sid= -p $$ | tr -d " ")" = "$$" && echo leader-$(tty | cut -c1-9)');
  await waitForLine(page, id, 'leader-/dev/pts/');
  await typeCommand(page, 'echo via-dev-tty > /dev/tty && echo devtty-$?');
  await waitForLine(page, id, 'devtty-0');

  // Ctrl-C stops a foreground sleep: the shell sees it die of SIGINT (130).
  await typeCommand(page, 'sleep 300');
  await waitForProcess(flint, session, 'sleep');
  await page.keyboard.press('Control+c');
  await waitForPrompt(page, id);
  expect(await lastStatus(page, id, 'after-ctrl-c')).toBe('130');
  expect(await execOut(flint, session, 'pgrep -x sleep || echo none')).toBe('none\n');

  // Ctrl-Z stops it, `jobs` lists it, `fg` brings it back, Ctrl-C ends it.
  await typeCommand(page, 'sleep 301');
  await waitForProcess(flint, session, 'sleep');
  await page.keyboard.press('Control+z');
  await until(async () => ((await bufferLines(page, id)) || []).some((l) => /^\[1\]\+\s+Stopped\s+sleep 301$/.test(l)), {
    message: async () => `Ctrl-Z did not stop the job:\n${await tailText(page, id)}`,
  });
  expect(await execOut(flint, session, 'ps -o stat= -C sleep')).toMatch(/^T/);
  await typeCommand(page, 'fg');
  await until(async () => (await execOut(flint, session, 'ps -o stat= -C sleep')).startsWith('S'), {
    message: 'fg did not resume the job',
  });
  await page.keyboard.press('Control+c');
  await waitForPrompt(page, id);
  expect(await lastStatus(page, id, 'after-fg')).toBe('130');

  // A dev server in the foreground stops on Ctrl-C and gives the prompt back.
  await typeCommand(page, 'python3 -m http.server 8123');
  await waitForLine(page, id, 'Serving HTTP on 0.0.0.0 port 8123 (http://0.0.0.0:8123/) ...');
  await page.keyboard.press('Control+c');
  await waitForLine(page, id, 'Keyboard interrupt received, exiting.');
  await waitForPrompt(page, id);
});

test('full-screen programs draw and quit: top, htop, vim, less and git log', async ({ page, sessions }) => {
  test.setTimeout(150_000);
  const { id } = await open(page, sessions, 'e2e-term-fullscreen');
  const { rows } = await terminalInfo(page, id);

  await typeCommand(page, 'top -d 1');
  await waitForScreen(page, id, /PID\s+USER/, 'top');
  await until(async () => (await screen(page, id)).rows[0].startsWith('top -'), { message: 'top has no header' });
  await shot(page, 'terminal-top-gvisor');
  await page.keyboard.press('q');
  await waitForPrompt(page, id);

  await typeCommand(page, 'htop');
  await waitForScreen(page, id, /F1Help\s+F2Setup/, 'htop');
  await waitForScreen(page, id, /Mem\[/, 'htop meters');
  await shot(page, 'terminal-htop-gvisor');
  await page.keyboard.press('q');
  await waitForPrompt(page, id);

  // vim: insert, write and quit; the file holds what was typed.
  await typeCommand(page, 'vim /workspace/notes.txt');
  await waitForScreen(page, id, /notes\.txt/, 'vim');
  await page.keyboard.press('i');
  await page.keyboard.type('typed in vim under gvisor');
  await waitForScreen(page, id, /^typed in vim under gvisor$/, "vim's text");
  await waitForScreen(page, id, /-- INSERT --/, "vim's insert mode");
  await shot(page, 'terminal-vim-gvisor');
  await page.keyboard.press('Escape');
  await page.keyboard.type(':wq');
  await page.keyboard.press('Enter');
  await waitForPrompt(page, id);
  await typeCommand(page, 'cat /workspace/notes.txt');
  await waitForLine(page, id, 'typed in vim under gvisor');

  // less pages a long text: the first page, then the next after a space; q quits.
  await typeCommand(page, 'seq 1 1000 | less');
  await waitForScreen(page, id, /^:$/, 'less');
  const first = await screen(page, id);
  expect(first.rows[0]).toBe('1');
  await page.keyboard.press(' ');
  await until(async () => (await screen(page, id)).rows[0] === String(rows), {
    message: async () => `less did not page:\n${(await screen(page, id)).rows.join('\n')}`,
  });
  await page.keyboard.press('q');
  await waitForPrompt(page, id);

  // git log goes through its pager.
  await typeCommand(
    page,
    'git init -q /workspace/repo && cd /workspace/repo && for i in $(seq 1 40); do ' +
      'git -c user.name=flint -c user.email=f@example.com commit -q --allow-empty -m "change $i"; done; echo made-commits',
  );
  await waitForLine(page, id, 'made-commits', { timeout: 60_000 });
  await waitForPrompt(page, id);
  await typeCommand(page, 'git log');
  await waitForScreen(page, id, /^\s+change 40$/, 'git log');
  await waitForScreen(page, id, /^:$/, "git log's pager");
  await page.keyboard.press('q');
  await waitForPrompt(page, id);
});

test('secrets typed at a prompt are not echoed, npm returns, and stty size follows the window', async ({ page, sessions }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1200, height: 760 });
  const { id } = await open(page, sessions, 'e2e-term-input');

  await typeCommand(page, 'read -s -p "secret: " S; echo; echo read-length=${#S}');
  await waitForScreen(page, id, /secret: $/, 'read -s');
  await page.keyboard.type('hunter2');
  await page.keyboard.press('Enter');
  await waitForLine(page, id, 'read-length=7');

  await typeCommand(page, `python3 -c "import getpass; print('getpass-length', len(getpass.getpass('pw: ')))"`);
  await waitForScreen(page, id, /pw: $/, 'getpass');
  await page.keyboard.type('sesame-open');
  await page.keyboard.press('Enter');
  await waitForLine(page, id, 'getpass-length 11');
  const lines = (await bufferLines(page, id)).join('\n');
  expect(lines).not.toContain('hunter2');
  expect(lines).not.toContain('sesame-open');
  expect(lines).not.toContain('GetPassWarning');

  // npm (whose stderr is the terminal) does its work and exits.
  await typeCommand(page, 'npm --version; echo npm-exited-$?');
  await waitForLine(page, id, 'npm-exited-0', { timeout: 30_000 });
  await waitForPrompt(page, id);

  const before = await terminalInfo(page, id);
  await typeCommand(page, 'echo size-$(stty size | tr " " x)');
  await waitForLine(page, id, `size-${before.rows}x${before.cols}`);
  await page.setViewportSize({ width: 900, height: 600 });
  const after = await until(async () => {
    const now = await terminalInfo(page, id);
    return now.cols !== before.cols && now.rows !== before.rows ? now : null;
  }, { message: 'the terminal did not shrink with the window' });
  await until(async () => {
    await typeCommand(page, `echo resized-$(stty size | tr " " x)`);
    await waitForPrompt(page, id);
    return (await bufferLines(page, id)).includes(`resized-${after.rows}x${after.cols}`);
  }, { timeout: 10_000, interval: 500, message: async () => `stty size never said ${after.rows}x${after.cols}:\n${await tailText(page, id)}` });
});

test('Ctrl-C stops a foreground Vite dev server', async ({ page, flint, sessions }) => {
  test.setTimeout(120_000);
  const session = await sessions.create({ name: 'e2e-term-vite', image: 'vite', cpus: 1, memory_mb: 1024 });
  await page.goto(`/s/${session.id}`);
  const id = await waitForPrompt(page, null, { timeout: 30_000 });
  await typeCommand(page, 'cd /opt/vite && npx vite --port 5173 --host 127.0.0.1');
  await until(async () => ((await bufferLines(page, id)) || []).some((l) => /Local:\s+http:\/\/127\.0\.0\.1:5173\//.test(l)), {
    timeout: 60_000,
    message: async () => `vite did not start:\n${await tailText(page, id)}`,
  });
  await page.keyboard.press('Control+c');
  await waitForPrompt(page, id);
  await until(async () => (await execOut(flint, session, 'pgrep -f "[v]ite --port 5173" || echo none')) === 'none\n', {
    interval: 500,
    message: 'vite still runs after Ctrl-C',
  });
});
