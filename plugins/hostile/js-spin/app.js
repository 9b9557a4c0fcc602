// js-spin: its route loops forever; the host's deadline must end the call.
import { Plugin } from './capstan.js';

const app = new Plugin();

app.route('GET', '/spin', () => {
  let n = 0;
  for (;;) n += 1;
});

export const { handler } = app.exports();
