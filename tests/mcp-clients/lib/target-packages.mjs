// Lets the client scripts import the npm packages scripts/mcp-clients installs into
// target/mcp-clients/node (override with MCP_NODE_DIR). ESM resolves bare specifiers from
// the importing file's folder and ignores NODE_PATH, so a resolve hook re-resolves
// `@modelcontextprotocol/*` as if imported from that project, with Node's own resolution
// (package exports, `import` condition). Import this module first, then import the
// packages dynamically: static imports are resolved before any module code runs.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

const nodeDir = process.env.MCP_NODE_DIR
  ? pathToFileURL(process.env.MCP_NODE_DIR.replace(/\/?$/, '/'))
  : new URL('../../../target/mcp-clients/node/', import.meta.url);
register('./target-packages-hook.mjs', import.meta.url, {
  data: { parentURL: new URL('package.json', nodeDir).href },
});
