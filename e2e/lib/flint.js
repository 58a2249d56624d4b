// Starting a real `flint serve` for the e2e suite and the UI bench: binaries from the
// environment, a fresh data directory with the shared test image linked in, a TCP relay in
// front (so a test can cut the network under open websockets), and a bearer token for
// checking and cleaning up state through the API.

import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

/** The repository root (`e2e/..`). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where screenshots, logs and bench results go. */
export const E2E_OUT = path.join(REPO, 'target/e2e');

/** Binaries and image specs, from the environment or the repository's defaults. */
export function paths() {
  const env = (name, fallback) => process.env[name] || fallback;
  return {
    flint: env('FLINT_BIN', path.join(REPO, 'target/debug/flint')),
    agent: env('FLINT_AGENT_BIN', path.join(REPO, 'target/debug/guest-agent')),
    images: env('FLINT_IMAGES_DIR', path.join(REPO, 'images')),
    // The shared cache of the built test image (the Rust tests use the same one).
    imageCache: path.join(REPO, 'target/flint-test-data'),
    webDist: path.join(REPO, 'web/dist/index.html'),
  };
}

/** Fails early, with the command to run, when something the suite needs is missing. */
export function checkPrerequisites() {
  const p = paths();
  const missing = [];
  if (!fs.existsSync(p.flint)) missing.push(`flint binary ${p.flint} (cargo build -p server, or set FLINT_BIN)`);
  if (!fs.existsSync(p.agent)) missing.push(`guest agent ${p.agent} (cargo build -p guest-agent, or set FLINT_AGENT_BIN)`);
  for (const image of ['test', ...EXTRA_IMAGES]) {
    const spec = path.join(p.images, `${image}.toml`);
    if (!fs.existsSync(spec)) missing.push(`image spec ${spec} (FLINT_IMAGES_DIR)`);
  }
  // A debug `flint` serves web/dist from disk; a release one embeds it.
  if (!fs.existsSync(p.webDist) && p.flint.includes('/debug/')) {
    missing.push(`the web app ${p.webDist} (build web/ with trunk, see web/Trunk.toml)`);
  }
  if (missing.length) throw new Error(`e2e: missing:\n  - ${missing.join('\n  - ')}`);
}

/**
 * Builds image `name` (`images/<name>.toml`) into the shared cache unless it is built already.
 * `flint image build` is a no-op for a cached spec (it compares the spec's hash), so it always
 * runs: a cache of an older spec is rebuilt instead of silently used. Its progress (one line
 * per phase) goes to `log`.
 */
export async function ensureImage(name, { log = (s) => process.stderr.write(s) } = {}) {
  const p = paths();
  fs.mkdirSync(p.imageCache, { recursive: true });
  const started = Date.now();
  await new Promise((resolve, reject) => {
    const child = spawn(
      p.flint,
      ['image', 'build', path.join(p.images, `${name}.toml`), '--data-dir', p.imageCache],
      { env: { ...process.env, FLINT_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => log(d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`flint image build ${name} exited with ${code}`)),
    );
  });
  const ms = Date.now() - started;
  if (ms > 2000) log(`e2e: ${name} image ready after ${(ms / 1000).toFixed(1)} s\n`);
}

/**
 * The sandbox driver of the suite's servers: gVisor, the default users get (a terminal that
 * works only on the process driver is a bug no test would see), unless `FLINT_E2E_DRIVER`
 * names another.
 */
export const E2E_DRIVER = process.env.FLINT_E2E_DRIVER || 'gvisor';

/** The image every test uses (`images/test.toml`). */
export async function ensureTestImage(options) {
  await ensureImage('test', options);
}

/**
 * Images the suite's tests ask for besides `test`: `vite` (11-vite: a Vite 5 dev server) and
 * `default` (12-browser: the shared browser's Chromium).
 */
export const EXTRA_IMAGES = ['vite', 'default'];

/** A free TCP port on 127.0.0.1 (listen on port 0, read it, close). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A TCP relay on 127.0.0.1:`port` to 127.0.0.1:`target`. `cut()` destroys every open
 * connection and then refuses new ones (accepted and closed at once), or, with
 * `{ hold: true }`, holds them unanswered until `restore()`; `restore()` pipes again.
 */
export class Relay {
  constructor(port, target) {
    this.port = port;
    this.target = target;
    this.mode = 'open'; // 'open' | 'refuse' | 'hold'
    this.conns = new Set();
    this.held = [];
    this.server = net.createServer((client) => this.#accept(client));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', resolve);
    });
  }

  #accept(client) {
    client.on('error', () => {});
    if (this.mode === 'refuse') {
      client.destroy();
      return;
    }
    if (this.mode === 'hold') {
      client.pause();
      this.held.push(client);
      client.on('close', () => (this.held = this.held.filter((c) => c !== client)));
      return;
    }
    this.#pipe(client);
  }

  #pipe(client) {
    const upstream = net.connect(this.target, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair = { client, upstream };
    this.conns.add(pair);
    const drop = () => {
      this.conns.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  /** Network loss: every open connection dies; new ones are refused (or held). */
  cut({ hold = false } = {}) {
    this.mode = hold ? 'hold' : 'refuse';
    for (const { client, upstream } of this.conns) {
      client.destroy();
      upstream.destroy();
    }
    this.conns.clear();
  }

  /** The network is back: held connections go through, new ones too. */
  restore() {
    this.mode = 'open';
    const held = this.held;
    this.held = [];
    for (const client of held) if (!client.destroyed) this.#pipe(client);
  }

  /** Connections being relayed right now. */
  get openConnections() {
    return this.conns.size;
  }

  async close() {
    this.cut();
    for (const c of this.held) c.destroy();
    this.held = [];
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Starts `flint serve` on a fresh data directory behind a relay. The server's public origin
 * is the relay's, so browsers (which only ever talk to the relay) pass its Origin checks.
 */
export async function startFlint({ name = 'e2e' } = {}) {
  const p = paths();
  fs.mkdirSync(path.join(E2E_OUT, 'logs'), { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `flint-${name}-`));
  fs.symlinkSync(path.join(p.imageCache, 'images'), path.join(dataDir, 'images'));

  const port = await freePort();
  let relayPort = await freePort();
  while (relayPort === port) relayPort = await freePort();
  const relay = new Relay(relayPort, port);
  await relay.listen();
  const origin = `http://127.0.0.1:${relayPort}`;
  const direct = `http://127.0.0.1:${port}`;

  const logPath = path.join(E2E_OUT, 'logs', `flint-${name}-${port}.log`);
  const logFd = fs.openSync(logPath, 'w');
  const env = {
    ...process.env,
    FLINT_IMAGES_DIR: p.images,
    FLINT_AGENT_BIN: p.agent,
    FLINT_LOG: process.env.FLINT_LOG || 'warn',
  };
  const child = spawn(
    p.flint,
    [
      'serve', '--listen', `127.0.0.1:${port}`, '--public-origin', origin, '--data-dir', dataDir,
      // Sessions on the driver users get (gVisor, `FLINT_E2E_DRIVER` for another), with no
      // warm spares: tests make what they need.
      '--driver', E2E_DRIVER, '--pool-size', '0',
    ],
    { env, stdio: ['ignore', 'pipe', logFd] },
  );
  fs.closeSync(logFd);

  const lines = readline.createInterface({ input: child.stdout });
  const loginUrl = await new Promise((resolve, reject) => {
    let listening = false;
    let url = null;
    const timer = setTimeout(() => reject(new Error(`flint serve did not start in 30 s (log: ${logPath})`)), 30_000);
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`flint serve exited with ${code} at start-up (log: ${logPath}):\n${tail(logPath)}`));
    };
    child.once('exit', onExit);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    lines.on('line', (line) => {
      fs.appendFileSync(logPath, `[stdout] ${line}\n`);
      if (line.startsWith('Flint is listening on ')) listening = true;
      else if (line.startsWith('Sign in: ')) url = line.slice('Sign in: '.length).trim();
      if (listening && url) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(url);
      }
    });
  });

  const cli = async (...args) => {
    const { stdout } = await run(p.flint, [...args, '--data-dir', dataDir], { env });
    return stdout.trim();
  };
  const token = await cli('token', 'create', '--name', 'e2e');

  /** The API with the bearer token, straight to the server (not through the relay). */
  async function api(method, urlPath, body) {
    const response = await fetch(direct + urlPath, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: response.status, json, text };
  }

  let stopped = false;
  return {
    /** The browser's origin (the relay). */
    url: origin,
    /** The server itself. */
    direct,
    relay,
    dataDir,
    logPath,
    /** The login URL `flint serve` printed (single use). */
    loginUrl,
    token,
    api,
    cli,
    /** A fresh single-use login URL (`flint login-url`), pointing at the relay. */
    async newLoginUrl() {
      return cli('login-url', '--public-origin', origin);
    },
    /**
     * Writes `text` to `file` (absolute, or relative to /workspace) in a session through the
     * files API, creating its directory first. The agent writes a temporary file beside it
     * and renames it into place, as an editor does.
     */
    async writeFile(sessionId, file, text) {
      const dir = path.posix.dirname(path.posix.resolve('/workspace', file));
      const made = await api('POST', `/api/sessions/${sessionId}/files/mkdir`, { path: dir });
      if (made.status !== 204) throw new Error(`mkdir ${dir}: ${made.status} ${made.text}`);
      const response = await fetch(`${direct}/api/sessions/${sessionId}/files/content?path=${encodeURIComponent(file)}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: text,
      });
      if (response.status !== 200) throw new Error(`writing ${file}: ${response.status} ${await response.text()}`);
    },
    /** Creates a session through the API (answers once it runs). */
    async createSession(fields = {}) {
      const reply = await api('POST', '/api/sessions', {
        image: 'test',
        cpus: 0.5,
        memory_mb: 512,
        disk_mb: 2048,
        ...fields,
      });
      if (reply.status !== 201 && reply.status !== 200) {
        throw new Error(`creating a session: ${reply.status} ${reply.text}`);
      }
      return reply.json;
    },
    /** Deletes every session (sandboxes outlive the server: they must go before it does). */
    async destroyAllSessions() {
      const list = await api('GET', '/api/sessions');
      const sessions = Array.isArray(list.json) ? list.json : list.json?.sessions ?? [];
      const failed = [];
      for (const s of sessions) {
        const reply = await api('DELETE', `/api/sessions/${s.id}`);
        if (reply.status !== 204 && reply.status !== 404) failed.push(`${s.id}: ${reply.status} ${reply.text}`);
      }
      return failed;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await relay.close().catch(() => {});
      let failed = ['(not tried)'];
      if (child.exitCode === null) {
        failed = await this.destroyAllSessions().catch((e) => [String(e)]);
        if (failed.length) process.stderr.write(`e2e: could not delete sessions:\n  ${failed.join('\n  ')}\n`);
        child.kill('SIGTERM');
        let timer;
        const exited = await Promise.race([
          new Promise((resolve) => child.once('exit', () => resolve(true))),
          new Promise((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
        ]);
        clearTimeout(timer);
        if (!exited) child.kill('SIGKILL');
      }
      // Only a data directory whose sessions are all gone is removed (a leftover sandbox
      // still uses its session directory); rm does not follow the images symlink.
      if (failed.length === 0) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function tail(file, n = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** Launch options for Debian's Chromium (Playwright's own browser download does not work here). */
export const chromiumLaunchOptions = {
  executablePath: process.env.FLINT_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
