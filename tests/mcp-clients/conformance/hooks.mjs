// Resolve hook registered by register.mjs (runs on Node's loader thread).
const shim = new URL('./fs-glob.mjs', import.meta.url).href;
const conformance = '/node_modules/@modelcontextprotocol/conformance/';

export async function resolve(specifier, context, nextResolve) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes(conformance)) {
    return { url: shim, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
