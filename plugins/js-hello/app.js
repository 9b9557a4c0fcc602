// js-hello: greets on its route, counts visits in kv, and offers the `tools` plugin's MCP
// tools, written in JavaScript against the Capstan guest SDK.
import * as kvBinding from 'capstan:plugin/kv@0.2.0';
import * as logBinding from 'capstan:plugin/log@0.2.0';
import { Plugin, Response, kvStore, logger } from './capstan.js';

const kv = kvStore(kvBinding);
const log = logger(logBinding);
const app = new Plugin();

app.route('GET', '/', (request) => {
  const name = request.query('name') ?? 'world';
  log.info(`greeting ${name}`);
  return Response.text(200, `hello, ${name}`);
});

app.route('GET', '/count', () => Response.json(200, { hits: kv.increment('hits') }));

const text = { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] };

app.tool('add', 'Add two numbers.', {
  type: 'object',
  properties: { a: { type: 'number' }, b: { type: 'number' } },
  required: ['a', 'b'],
}, ({ a, b }) => a + b);

app.tool('word-count', 'Count the words in a text.', text,
  (args) => args.text.split(/\s+/).filter(Boolean).length);

app.tool('text-stats', 'Count the words, characters and lines of a text.', text, (args) => ({
  words: args.text.split(/\s+/).filter(Boolean).length,
  characters: [...args.text].length,
  lines: args.text.split('\n').length,
}));

export const { handler, mcp } = app.exports();
