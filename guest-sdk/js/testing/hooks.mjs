// Module resolution hook: `capstan:plugin/kv@0.2.0` → ./doubles/kv.mjs, and so on.
export async function resolve(specifier, context, next) {
  const match = /^capstan:plugin\/([a-z-]+)@/.exec(specifier);
  if (match) {
    return { url: new URL(`./doubles/${match[1]}.mjs`, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
