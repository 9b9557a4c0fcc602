// node:fs plus the `globSync` Node 22 added, as far as the conformance suite uses it:
// `globSync('**/checks.json', { cwd })` (tier-check reading a results directory). Supports
// `**` (any number of directories), `*` and `?` within a path segment; returns matching
// paths relative to `cwd` (default: the working directory), like Node's.
import fs from 'node:fs';

export * from 'node:fs';
export default fs;

function toRegExp(pattern) {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (pattern.startsWith('**/', i)) {
      source += '(?:.*/)?';
      i += 2;
    } else if (pattern.startsWith('**', i)) {
      source += '.*';
      i += 1;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

export function globSync(pattern, options = {}) {
  const cwd = options.cwd ?? process.cwd();
  const patterns = (Array.isArray(pattern) ? pattern : [pattern]).map(toRegExp);
  return fs
    .readdirSync(cwd, { recursive: true })
    .map(path => String(path))
    .filter(path => patterns.some(re => re.test(path)));
}
