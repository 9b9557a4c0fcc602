// Builds one JavaScript plugin into a component with its manifest embedded:
//   node build.mjs <plugin-dir> <out.wasm> <contract-wit-dir> <sdk-dir>
// componentize-js compiles <plugin-dir>/app.js (with capstan.js beside it) against the
// plugin's own wit/world.wit, which names only what its manifest declares, with every
// WASI feature disabled (the gate links no filesystem or sockets, and the plugin reaches
// the world only through its capabilities); then capstan.toml becomes the
// `capstan-manifest` custom section, as the Rust SDK's macro writes it.
import { componentize } from '@bytecodealliance/componentize-js';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [pluginDir, out, contract, sdk] = process.argv.slice(2);
if (!pluginDir || !out || !contract || !sdk) {
  console.error('usage: node build.mjs <plugin-dir> <out.wasm> <contract-wit-dir> <sdk-dir>');
  process.exit(2);
}

function leb128(n) {
  const bytes = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    bytes.push(byte);
  } while (n);
  return bytes;
}

/** `component` with `manifest` appended as the `capstan-manifest` custom section. */
function embed(component, manifest) {
  const name = Buffer.from('capstan-manifest');
  const payload = Buffer.concat([Buffer.from(leb128(name.length)), name, manifest]);
  return Buffer.concat([component, Buffer.from([0, ...leb128(payload.length)]), payload]);
}

const work = await mkdtemp(join(tmpdir(), 'capstan-js-'));
try {
  for (const file of await readdir(pluginDir)) {
    if (file.endsWith('.js')) await cp(join(pluginDir, file), join(work, file));
  }
  await cp(join(sdk, 'capstan.js'), join(work, 'capstan.js'));
  await mkdir(join(work, 'wit/deps/capstan-plugin'), { recursive: true });
  await cp(join(pluginDir, 'wit'), join(work, 'wit'), { recursive: true });
  for (const file of await readdir(contract)) {
    if (file.endsWith('.wit')) await cp(join(contract, file), join(work, 'wit/deps/capstan-plugin', file));
  }
  await cp(join(contract, 'deps'), join(work, 'wit/deps'), { recursive: true });
  const worldText = await readFile(join(pluginDir, 'wit/world.wit'), 'utf8');
  const worldName = worldText.match(/^world ([a-z0-9-]+)/m)?.[1];
  if (!worldName) throw new Error(`${pluginDir}/wit/world.wit names no world`);
  const { component } = await componentize({
    sourcePath: join(work, 'app.js'),
    witPath: join(work, 'wit'),
    worldName,
    disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
  });
  const manifest = await readFile(join(pluginDir, 'capstan.toml'));
  await writeFile(out, embed(Buffer.from(component), manifest));
} finally {
  await rm(work, { recursive: true, force: true });
}
