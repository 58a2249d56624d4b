// Reading and typing into the app's xterm.js terminals. The app exposes each one as
// `window.__flintTerminals[terminalId]`; tests read its buffer (scrollback included), never
// the rendered viewport.

/** Polls `fn` until it returns a truthy value, or throws `message()` after `timeout` ms. */
export async function until(fn, { timeout = 15_000, interval = 50, message = () => 'timed out' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`${typeof message === 'function' ? await message() : message} (after ${timeout} ms)`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The id of the active terminal (`data-testid="terminal"`), once one is shown. */
export async function activeTerminalId(page, { timeout = 20_000 } = {}) {
  const terminal = page.getByTestId('terminal');
  await terminal.waitFor({ state: 'visible', timeout });
  return until(async () => terminal.getAttribute('data-terminal-id'), {
    timeout,
    message: 'the terminal has no data-terminal-id',
  });
}

/**
 * The terminal's buffer (scrollback and screen) as logical lines: a row that wraps onto the
 * next is joined with it; trailing blanks are trimmed. `null` if the terminal is not exposed.
 */
export async function bufferLines(page, id) {
  return page.evaluate((id) => {
    const t = window.__flintTerminals && window.__flintTerminals[id];
    if (!t) return null;
    const b = t.buffer.active;
    const out = [];
    for (let i = 0; i < b.length; i++) {
      const line = b.getLine(i);
      if (!line) continue;
      const next = b.getLine(i + 1);
      const text = line.translateToString(!(next && next.isWrapped));
      if (line.isWrapped && out.length) out[out.length - 1] += text;
      else out.push(text);
    }
    return out.map((l) => l.replace(/\s+$/, ''));
  }, id);
}

/** What the screen shows now: the rows of the viewport, trimmed, plus the buffer kind. */
export async function screen(page, id) {
  return page.evaluate((id) => {
    const t = window.__flintTerminals && window.__flintTerminals[id];
    if (!t) return null;
    const b = t.buffer.active;
    const rows = [];
    for (let y = 0; y < t.rows; y++) {
      const line = b.getLine(b.viewportY + y);
      rows.push(line ? line.translateToString(true) : '');
    }
    return { type: b.type, rows, cols: t.cols, height: t.rows };
  }, id);
}

/** The xterm's size and options the tests rely on. */
export async function terminalInfo(page, id) {
  return page.evaluate((id) => {
    const t = window.__flintTerminals && window.__flintTerminals[id];
    if (!t) return null;
    return { rows: t.rows, cols: t.cols, scrollback: t.options.scrollback, buffer: t.buffer.active.type };
  }, id);
}

/** True when the cursor sits right after a shell prompt (`# ` or `$ `). */
export async function atPrompt(page, id) {
  return page.evaluate((id) => {
    const t = window.__flintTerminals && window.__flintTerminals[id];
    if (!t) return false;
    const b = t.buffer.active;
    if (b.type !== 'normal') return false;
    const line = b.getLine(b.baseY + b.cursorY);
    if (!line) return false;
    return /[#$] $/.test(line.translateToString(false).slice(0, b.cursorX));
  }, id);
}

/** Waits for the shell's prompt in terminal `id` (default: the active one); returns the id. */
export async function waitForPrompt(page, id, { timeout = 20_000 } = {}) {
  id = id || (await activeTerminalId(page, { timeout }));
  await until(() => atPrompt(page, id), {
    timeout,
    message: async () => `no shell prompt in terminal ${id}; buffer ends:\n${await tailText(page, id)}`,
  });
  return id;
}

/** Waits until some logical line of the buffer equals `text` exactly. */
export async function waitForLine(page, id, text, { timeout = 20_000 } = {}) {
  await until(async () => (await bufferLines(page, id))?.includes(text), {
    timeout,
    message: async () => `no line "${text}" in terminal ${id}; buffer ends:\n${await tailText(page, id)}`,
  });
}

/** How many logical lines equal `text` exactly. */
export async function countLines(page, id, text) {
  return ((await bufferLines(page, id)) || []).filter((l) => l === text).length;
}

/** Focuses the active terminal and types `command`, then Enter. */
export async function typeCommand(page, command) {
  await page.getByTestId('terminal').click();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

/** The last lines of the buffer, for failure messages. */
export async function tailText(page, id, n = 15) {
  const lines = (await bufferLines(page, id).catch(() => null)) || ['(terminal not exposed)'];
  const trimmed = [...lines];
  while (trimmed.length && trimmed[trimmed.length - 1] === '') trimmed.pop();
  return trimmed.slice(-n).map((l) => `  | ${l}`).join('\n');
}
