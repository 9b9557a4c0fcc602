import { state, witError } from './state.mjs';

export function get(name) {
  if (!state.secrets.has(name)) throw witError('not-found');
  return state.secrets.get(name);
}
