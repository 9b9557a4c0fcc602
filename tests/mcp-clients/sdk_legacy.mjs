// Drives Capstan's /mcp gateway with the TypeScript SDK v1 (@modelcontextprotocol/sdk
// 1.32.2): the 2025-11-25 initialize handshake, a session, and its standalone GET stream.
//
// Run: node tests/mcp-clients/sdk_legacy.mjs (packages from scripts/mcp-clients).
// Environment: MCP_URL (the gateway), MCP_TOKEN (a client token scoped to plugin `tools`),
// MCP_REVOKED_TOKEN (a revoked one). Prints one JSON object per line to stdout, one per step
// of the scenario (list, call, bad-args, no-token, revoked, ready, list_changed); diagnostics
// go to stderr. After `ready` it waits for the tool list to change (the harness installs a
// new version of `tools`) and exits 0, or 3 after 30 s.
import './lib/target-packages.mjs';

const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');

const LIST_CHANGED_TIMEOUT_MS = 30_000;
const url = new URL(process.env.MCP_URL);
const emit = fields => process.stdout.write(JSON.stringify(fields) + '\n');
const log = (...args) => console.error('sdk_legacy:', ...args);

function connect(token, options = {}) {
  const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const client = new Client({ name: 'capstan-sdk-legacy', version: '0.1.0' });
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers }, ...options });
  return { client, connected: client.connect(transport) };
}

async function listAllTools(client) {
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    names.push(...page.tools.map(tool => tool.name));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return names.sort();
}

const firstText = result => result.content.find(c => c.type === 'text')?.text;

// Connect (initialize) and list with `token` (undefined: no Authorization header); the HTTP
// status the SDK surfaced: its StreamableHTTPError carries it as `code`.
async function rejectedStatus(token) {
  const { client, connected } = connect(token);
  try {
    await connected;
    await client.listTools();
    log('expected a refusal, but connecting and listing succeeded');
    return null;
  } catch (error) {
    log(`rejected as expected: ${error.name} code=${error.code}: ${error.message}`);
    return error.code;
  } finally {
    await client.close();
  }
}

// The SDK opens the standalone GET stream in the background once the server accepts
// notifications/initialized, and reports nothing when it is open (only failures, through
// onerror). The transport's `fetch` option lets us see the server's answer to that GET:
// a 200 means the server holds the stream, a deterministic signal instead of a sleep.
let getStreamOpen;
const getStreamOpened = new Promise(resolve => (getStreamOpen = resolve));
async function observingFetch(input, init) {
  const response = await fetch(input, init);
  if ((init?.method ?? 'GET') === 'GET') {
    log('GET stream answered', response.status);
    if (response.ok) getStreamOpen();
  }
  return response;
}

const { client, connected } = connect(process.env.MCP_TOKEN, { fetch: observingFetch });
client.onerror = error => log('client error:', error);
let listChanged;
const listChangedArrived = new Promise(resolve => (listChanged = resolve));
client.setNotificationHandler(ToolListChangedNotificationSchema, () => listChanged());
await connected;
log('negotiated', client.transport?.protocolVersion ?? '(version not exposed)');

emit({ step: 'list', tools: await listAllTools(client) });

let result = await client.callTool({ name: 'tools__add', arguments: { a: 2, b: 40 } });
emit({ step: 'call', isError: result.isError ?? false, text: firstText(result) });

result = await client.callTool({ name: 'tools__add', arguments: { a: 'x' } });
emit({ step: 'bad-args', isError: result.isError ?? false, text: firstText(result) });

emit({ step: 'no-token', status: await rejectedStatus(undefined) });
emit({ step: 'revoked', status: await rejectedStatus(process.env.MCP_REVOKED_TOKEN) });

const timer = setTimeout(() => {
  log(`timed out after ${LIST_CHANGED_TIMEOUT_MS / 1000} s waiting for the GET stream or the tool list change`);
  process.exit(3);
}, LIST_CHANGED_TIMEOUT_MS);
await getStreamOpened;
emit({ step: 'ready' });
await listChangedArrived;
clearTimeout(timer);
emit({ step: 'list_changed' });
await client.close();
process.exit(0);
