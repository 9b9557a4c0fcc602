// `node --import ./testing/register.mjs --test`: resolves the plugin's
// `capstan:plugin/<interface>@…` imports to the in-memory doubles in ./doubles, so a
// plugin's app.js is unit-tested with plain node, outside any component.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
