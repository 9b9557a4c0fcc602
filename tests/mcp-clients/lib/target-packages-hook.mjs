// Resolve hook registered by target-packages.mjs (runs on Node's loader thread).
let parentURL;

export function initialize(data) {
  parentURL = data.parentURL;
}

export function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('@modelcontextprotocol/')) {
    return nextResolve(specifier, { ...context, parentURL });
  }
  return nextResolve(specifier, context);
}
