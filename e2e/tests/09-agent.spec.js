// The agent co-tenant: "Connect an agent" makes a session-scoped token; an MCP client (the
// official TypeScript SDK, acting as the agent from Node) types into the shell the person
// watches; the Activity panel shows each call live, the terminal says "agent is typing"
// while one runs, and Revoke cuts the agent off.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { test, expect, shot } from './fixtures.js';
import { waitForPrompt, waitForLine, bufferLines } from '../lib/terminal.js';

/** An MCP client over Streamable HTTP with the token as a bearer header. */
async function agent(url, token) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'flint-e2e-agent', version: '0.0.0' });
  await client.connect(transport);
  return client;
}

/** The text of a tool result's content. */
function resultText(result) {
  return (result.content || []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

test('an agent connected from the UI types into the shared shell, live in the activity panel, until revoked', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-agent' });
  await page.goto(`/s/${session.id}`);
  const terminal = await waitForPrompt(page);

  // The panel is there, with no agent yet.
  const panel = page.getByTestId('activity-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('agent-token')).toHaveCount(0);

  // Connect an agent: a token for this session only, shown once with the endpoint.
  await page.getByTestId('connect-agent').click();
  const dialog = page.getByTestId('connect-agent-dialog');
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('connect-agent-name')).toHaveValue(/^agent \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
  await dialog.getByTestId('connect-agent-name').fill('e2e agent');
  await dialog.getByTestId('connect-agent-create').click();
  await expect(dialog.getByTestId('connect-agent-result')).toBeVisible();
  const token = (await dialog.getByTestId('connect-agent-token').textContent()).trim();
  const url = (await dialog.getByTestId('connect-agent-url').textContent()).trim();
  expect(token).toMatch(/^flint_/);
  const origin = new URL(page.url()).origin;
  expect(url).toBe(`${origin}/api/sessions/${session.id}/mcp`);
  await expect(dialog.getByTestId('connect-agent-claude')).toHaveText(
    `claude mcp add --transport http flint-${session.id.slice(0, 8)} ${url} --header "Authorization: Bearer ${token}"`,
  );
  const cursor = JSON.parse(await dialog.getByTestId('connect-agent-cursor').textContent());
  expect(cursor).toEqual({ mcpServers: { flint: { url, headers: { Authorization: `Bearer ${token}` } } } });
  const generic = JSON.parse(await dialog.getByTestId('connect-agent-json').textContent());
  expect(generic).toEqual({ type: 'http', url, headers: { Authorization: `Bearer ${token}` } });
  await shot(page, 'connect-agent');
  await dialog.getByTestId('connect-agent-done').click();
  await expect(dialog).toHaveCount(0);

  // The token is listed in the panel (and only there: it is scoped to this session).
  const tokenRow = panel.getByTestId('agent-token');
  await expect(tokenRow).toHaveCount(1);
  await expect(tokenRow).toContainText('e2e agent');
  // Making it is in the feed.
  await expect(panel.locator('[data-testid="activity-entry"][data-kind="token.create"]')).toHaveCount(1);

  // The agent, from Node over MCP.
  const client = await agent(url, token);
  try {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const name of [
      'run_command', 'read_screen', 'send_keys', 'read_file', 'write_file', 'list_files', 'exec',
      'list_ports', 'preview_url', 'browser_navigate', 'browser_click', 'browser_type',
      'browser_screenshot', 'browser_text', 'browser_tabs',
    ]) {
      expect(names).toContain(name);
    }

    // (a), (b): a command in the shared shell, seen in the terminal and in the feed.
    const echoed = await client.callTool({ name: 'run_command', arguments: { command: 'echo agent-was-here' } });
    expect(echoed.isError ?? false).toBe(false);
    expect(resultText(echoed)).toContain('agent-was-here');
    await waitForLine(page, terminal, 'agent-was-here');
    const lines = await bufferLines(page, terminal);
    expect(lines.some((l) => /[#$] echo agent-was-here$/.test(l))).toBe(true);
    const echoEntry = panel
      .locator('[data-testid="activity-entry"][data-kind="mcp.run_command"]')
      .filter({ hasText: 'echo agent-was-here' });
    await expect(echoEntry).toHaveCount(1);
    await expect(echoEntry).toHaveAttribute('data-status', 'ok');
    await expect(echoEntry.getByTestId('activity-what')).toHaveText('run_command');
    await expect(echoEntry).toContainText('agent: e2e agent');
    await expect(tokenRow).toContainText(/used \d+ s ago/);

    // (c): while a call runs, the feed shows it running and the terminal says so.
    const slow = client.callTool({ name: 'run_command', arguments: { command: 'sleep 2; echo done-$((6*7))' } });
    const slowEntry = panel
      .locator('[data-testid="activity-entry"][data-kind="mcp.run_command"]')
      .filter({ hasText: 'sleep 2' });
    await expect(slowEntry).toHaveAttribute('data-status', 'started', { timeout: 5_000 });
    await expect(slowEntry.getByTestId('activity-status')).toContainText('running');
    const tab = page.locator(`[data-testid="terminal-tab"][data-terminal-id="${terminal}"]`);
    await expect(tab.getByTestId('tab-agent-typing')).toBeVisible({ timeout: 5_000 });
    await expect(page.getByTestId('terminal').getByTestId('agent-typing')).toBeVisible();
    await shot(page, 'agent-typing');
    const slowResult = await slow;
    expect(resultText(slowResult)).toContain('done-42');
    await expect(slowEntry).toHaveAttribute('data-status', 'ok');
    await expect(tab.getByTestId('tab-agent-typing')).toHaveCount(0);
    await expect(page.getByTestId('agent-typing')).toHaveCount(0);
    await waitForLine(page, terminal, 'done-42');
    await shot(page, 'activity');

    // Revoke asks first; Cancel leaves the agent working.
    await tokenRow.getByTestId('agent-token-revoke').click();
    await expect(tokenRow.getByTestId('agent-token-revoke-ask')).toContainText('Revoke? Its calls stop now.');
    await shot(page, 'revoke-ask');
    await tokenRow.getByTestId('agent-token-revoke-cancel').click();
    await expect(tokenRow.getByTestId('agent-token-revoke')).toBeVisible();
    const still = await client.callTool({ name: 'run_command', arguments: { command: 'echo still-here' } });
    expect(resultText(still)).toContain('still-here');

    // Revoke: the row goes, and the agent's next call is refused.
    await tokenRow.getByTestId('agent-token-revoke').click();
    await tokenRow.getByTestId('agent-token-revoke-confirm').click();
    await expect(panel.getByTestId('agent-token')).toHaveCount(0);
    await expect(panel.locator('[data-testid="activity-entry"][data-kind="token.revoke"]')).toHaveCount(1);
    const refused = await client
      .callTool({ name: 'run_command', arguments: { command: 'echo after-revoke' } })
      .then(() => null, (e) => e);
    expect(refused, 'a call after revoking succeeded').not.toBeNull();
    expect(String(refused.code) === '401' || /401/.test(String(refused.message))).toBe(true);
    // A new connection with the same token is refused too.
    const again = await agent(url, token).then((c) => (c.close(), null), (e) => e);
    expect(again && (String(again.code) === '401' || /401/.test(String(again.message)))).toBe(true);
  } finally {
    await client.close().catch(() => {});
  }
  // Nothing the revoked agent sent reached the shell.
  expect((await bufferLines(page, terminal)).some((l) => l.includes('after-revoke'))).toBe(false);
});

test('the connect dialog says why when a token cannot be made', async ({ page, sessions }) => {
  const session = await sessions.create({ name: 'e2e-agent-error' });
  await page.goto(`/s/${session.id}`);
  await waitForPrompt(page);
  await page.route('**/api/tokens', (route) =>
    route.request().method() === 'POST'
      ? route.fulfill({ status: 403, contentType: 'application/json', body: JSON.stringify({ error: 'tokens are disabled here' }) })
      : route.fallback(),
  );
  await page.getByTestId('connect-agent').click();
  const dialog = page.getByTestId('connect-agent-dialog');
  await dialog.getByTestId('connect-agent-create').click();
  await expect(dialog.getByTestId('connect-agent-error')).toHaveText('cannot make a token: tokens are disabled here');
  await expect(dialog.getByTestId('connect-agent-result')).toHaveCount(0);
});

test('a terminal the agent types into without a tab gets one, marked while it types', async ({ page, sessions, flint }) => {
  const session = await sessions.create({ name: 'e2e-agent-tab' });
  await page.goto(`/s/${session.id}`);
  const first = await waitForPrompt(page);
  const tabs = page.getByTestId('terminal-tab');
  await expect(tabs).toHaveCount(1);

  // A shell the page has no tab for, and a token made through the API.
  const made = await flint.api('POST', `/api/sessions/${session.id}/terminals`, {});
  expect(made.status, made.text).toBe(201);
  const other = String(made.json.id);
  const minted = await flint.api('POST', '/api/tokens', { name: 'e2e side agent', session_id: session.id });
  expect(minted.status, minted.text).toBe(201);
  await expect(page.getByTestId('agent-token')).toContainText('e2e side agent');

  const client = await agent(`${flint.url}/api/sessions/${session.id}/mcp`, minted.json.token);
  try {
    const call = client.callTool({ name: 'run_command', arguments: { command: 'sleep 1; echo elsewhere', terminal: other } });
    const tab = page.locator(`[data-testid="terminal-tab"][data-terminal-id="${other}"]`);
    await expect(tab.getByTestId('tab-agent-typing')).toBeVisible({ timeout: 5_000 });
    // It does not take the keyboard from the person's tab.
    await expect(page.getByTestId('terminal')).toHaveAttribute('data-terminal-id', first);
    expect(resultText(await call)).toContain('elsewhere');
    await expect(tab.getByTestId('tab-agent-typing')).toHaveCount(0);
    await tab.click();
    await waitForLine(page, other, 'elsewhere');
  } finally {
    await client.close().catch(() => {});
  }
});
