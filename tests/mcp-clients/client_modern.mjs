// Drives Capstan's /mcp gateway with the TypeScript SDK v2 client
// (@modelcontextprotocol/client 2.4.0) pinned to protocol 2026-07-28: server/discover at
// connect, stateless requests, and a `subscriptions/listen` stream for tool-list changes.
//
// Run: node tests/mcp-clients/client_modern.mjs (packages from scripts/mcp-clients).
// Environment: MCP_URL (the gateway), MCP_TOKEN (a client token scoped to plugin `tools`),
// MCP_REVOKED_TOKEN (a revoked one). Prints one JSON object per line to stdout, one per step
// of the scenario (list, call, bad-args, no-token, revoked, ready, list_changed); diagnostics
// go to stderr. After `ready` it waits for the tool list to change (the harness installs a
// new version of `tools`) and exits 0, or 3 after 30 s.
import './lib/target-packages.mjs';

const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');

const PROTOCOL_VERSION = '2026-07-28';
const LIST_CHANGED_TIMEOUT_MS = 30_000;
const url = new URL(process.env.MCP_URL);
const emit = fields => process.stdout.write(JSON.stringify(fields) + '\n');
const log = (...args) => console.error('client_modern:', ...args);

function connect(token) {
  const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  // No probe-and-fallback: connect() must find 2026-07-28 in server/discover or fail.
  const client = new Client(
    { name: 'capstan-client-modern', version: '0.1.0' },
    { versionNegotiation: { mode: { pin: PROTOCOL_VERSION } } },
  );
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  return { client, connected: client.connect(transport) };
}

async function listAllTools(client) {
  const names = [];
  let cursor;
  do {
    // Without a cursor the client walks every page itself; follow one anyway if it is given.
    const page = await client.listTools(cursor === undefined ? undefined : { cursor }, { cacheMode: 'bypass' });
    names.push(...page.tools.map(tool => tool.name));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return names.sort();
}

const firstText = result => result.content.find(c => c.type === 'text')?.text;

// Connect (server/discover) and list with `token` (undefined: no Authorization header); the
// HTTP status the client surfaced: an SdkHttpError carries it as `status`.
async function rejectedStatus(token) {
  const { client, connected } = connect(token);
  try {
    await connected;
    await client.listTools();
    log('expected a refusal, but connecting and listing succeeded');
    return null;
  } catch (error) {
    log(`rejected as expected: ${error.name} code=${error.code} status=${error.status}: ${error.message}`);
    return error.status ?? null;
  } finally {
    await client.close();
  }
}

const { client, connected } = connect(process.env.MCP_TOKEN);
client.onerror = error => log('client error:', error);
let listChanged;
const listChangedArrived = new Promise(resolve => (listChanged = resolve));
// Events on a listen stream are dispatched to the ordinary notification handlers.
client.setNotificationHandler('notifications/tools/list_changed', () => listChanged());
await connected;
log('negotiated', client.getNegotiatedProtocolVersion?.() ?? '(version not exposed)');

emit({ step: 'list', tools: await listAllTools(client) });

let result = await client.callTool({ name: 'tools__add', arguments: { a: 2, b: 40 } });
emit({ step: 'call', isError: result.isError ?? false, text: firstText(result) });

result = await client.callTool({ name: 'tools__add', arguments: { a: 'x' } });
emit({ step: 'bad-args', isError: result.isError ?? false, text: firstText(result) });

emit({ step: 'no-token', status: await rejectedStatus(undefined) });
emit({ step: 'revoked', status: await rejectedStatus(process.env.MCP_REVOKED_TOKEN) });

const timer = setTimeout(() => {
  log(`timed out after ${LIST_CHANGED_TIMEOUT_MS / 1000} s waiting for the tool list change`);
  process.exit(3);
}, LIST_CHANGED_TIMEOUT_MS);
// listen() resolves once notifications/subscriptions/acknowledged has arrived.
const subscription = await client.listen({ toolsListChanged: true });
log('listen acknowledged, honored:', JSON.stringify(subscription.honoredFilter));
subscription.closed.then(how => log('subscription closed:', how));
emit({ step: 'ready' });
await listChangedArrived;
clearTimeout(timer);
emit({ step: 'list_changed' });
await subscription.close();
await client.close();
process.exit(0);
