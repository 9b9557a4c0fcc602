import { state } from './state.mjs';

export const write = (level, message) => void state.logs.push([level, message]);
