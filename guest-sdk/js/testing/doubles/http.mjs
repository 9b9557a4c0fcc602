import { state, witError } from './state.mjs';

export function send(request) {
  state.requests.push(request);
  const canned = state.responses.find((r) => request.url.startsWith(r.prefix));
  if (!canned) throw witError('denied', `no canned response for ${request.url}`);
  return { status: canned.status, headers: [], body: canned.body };
}
