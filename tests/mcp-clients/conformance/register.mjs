// `node --import ./register.mjs .../conformance/dist/index.js ...`: makes
// @modelcontextprotocol/conformance 0.2.0-alpha.12 load on Node 20. Its bundle imports
// `globSync` from 'fs', which Node 20 lacks (added in 22), so the import fails at link
// time before any command runs. The hook redirects that package's `fs` imports, and only
// that package's, to fs-glob.mjs: node:fs plus a small globSync. Remove this shim when
// the machines run Node 22 or later.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
