import { state } from './state.mjs';

export const get = (key) => state.kv.get(key);
export const set = (key, value) => void state.kv.set(key, Uint8Array.from(value));
export const del = (key) => state.kv.delete(key);
export { del as delete };
export function increment(key, delta) {
  const next = BigInt(new TextDecoder().decode(state.kv.get(key) ?? new TextEncoder().encode('0'))) + delta;
  state.kv.set(key, new TextEncoder().encode(String(next)));
  return next;
}
