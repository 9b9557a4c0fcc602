// What the doubles hold, and what a test sets up or reads back. `reset()` between tests.
export const state = { kv: new Map(), secrets: new Map(), responses: [], requests: [], logs: [] };

export function reset() {
  state.kv.clear();
  state.secrets.clear();
  state.responses.length = 0;
  state.requests.length = 0;
  state.logs.length = 0;
}

export const setSecret = (name, value) => state.secrets.set(name, value);

/** Answer outbound requests whose URL starts with `prefix`. */
export const respond = (prefix, status, body = '') =>
  state.responses.push({ prefix, status, body: new TextEncoder().encode(body) });

export const kvSnapshot = () => Object.fromEntries([...state.kv].map(([k, v]) => [k, new TextDecoder().decode(v)]));
export const httpRequests = () => [...state.requests];
export const logs = () => [...state.logs];

/** The error a WIT `result` import throws, as componentize-js throws it. */
export function witError(tag, val) {
  return Object.assign(new Error(tag), { payload: val === undefined ? { tag } : { tag, val } });
}
