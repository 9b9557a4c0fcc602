// Write Capstan plugins in JavaScript: the same shape as the Rust SDK. A `Plugin` serves
// routes and MCP tools registered on it; the capability wrappers take the binding the
// plugin imports (so a plugin imports only what its manifest declares) and throw
// `CapstanError` instead of the raw WIT error.
//
//   import * as kvBinding from 'capstan:plugin/kv@0.2.0';
//   import { Plugin, Response, kvStore } from './capstan.js';
//   const kv = kvStore(kvBinding);
//   const app = new Plugin();
//   app.route('GET', '/', (request) => Response.text(200, `hello, ${request.query('name') ?? 'world'}`));
//   export const { handler, mcp } = app.exports();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A host call failed; `kind` is the WIT case (`denied`, `not-found`, `quota-exceeded`,
 *  `invalid-input`, `timeout`, `too-large`, `internal`). */
export class CapstanError extends Error {
  constructor(kind, detail = '') {
    super(detail ? `${kind}: ${detail}` : kind);
    this.kind = kind;
    this.detail = detail;
  }

  /** The WIT variant, for returning from an export. */
  toWit() {
    return this.detail ? { tag: this.kind, val: this.detail } : { tag: this.kind };
  }
}

/** Run a host call, turning the WIT error it throws into a `CapstanError`. */
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    const payload = error?.payload;
    if (payload && typeof payload.tag === 'string') {
      throw new CapstanError(payload.tag, typeof payload.val === 'string' ? payload.val : '');
    }
    throw error;
  }
}

/** An inbound request below the plugin's prefix. */
export class Request {
  constructor(raw) {
    this.method = raw.method;
    this.path = raw.path;
    this.queryString = raw.query;
    this.headers = raw.headers;
    this.body = raw.body;
  }

  query(name) {
    for (const pair of this.queryString.split('&')) {
      const [key, value = ''] = pair.split('=');
      if (decodeURIComponent(key) === name) return decodeURIComponent(value.replace(/\+/g, ' '));
    }
    return undefined;
  }

  header(name) {
    const wanted = name.toLowerCase();
    return this.headers.find(([key]) => key.toLowerCase() === wanted)?.[1];
  }

  text() {
    return decoder.decode(this.body);
  }

  json() {
    return JSON.parse(this.text() || 'null');
  }
}

/** What a route returns. */
export const Response = {
  text(status, text) {
    return { status, headers: [['content-type', 'text/plain; charset=utf-8']], body: encoder.encode(text) };
  },
  json(status, value) {
    return { status, headers: [['content-type', 'application/json']], body: encoder.encode(JSON.stringify(value)) };
  },
};

/** Routes and MCP tools, exported as the `handler` and `mcp` interfaces. */
export class Plugin {
  constructor() {
    this.routes = [];
    this.tools = new Map();
  }

  /** Serve `method path` (exact, or a prefix when it ends with `/*`). */
  route(method, path, fn) {
    this.routes.push({ method: method.toUpperCase(), path, fn });
    return this;
  }

  /** Offer MCP tool `name`: `fn(args, context)` returns anything JSON can encode. */
  tool(name, description, inputSchema, fn) {
    this.tools.set(name, { description, inputSchema, fn });
    return this;
  }

  handle(raw) {
    const request = new Request(raw);
    for (const { method, path, fn } of this.routes) {
      const matches = path === request.path || (path.endsWith('/*') && request.path.startsWith(path.slice(0, -1)));
      if (method === request.method && matches) {
        try {
          return fn(request);
        } catch (error) {
          if (error instanceof CapstanError) {
            return Response.json(error.kind === 'denied' ? 403 : 500, { error: error.kind, detail: error.detail });
          }
          throw error;
        }
      }
    }
    return Response.text(404, 'no such route');
  }

  /** `{ handler, mcp }` for `export const { handler, mcp } = app.exports();`. */
  exports() {
    const plugin = this;
    return {
      handler: { handle: (raw) => plugin.handle(raw) },
      mcp: {
        listTools() {
          return [...plugin.tools].map(([name, tool]) => ({
            name,
            description: tool.description,
            inputSchema: JSON.stringify(tool.inputSchema),
          }));
        },
        callTool(name, args, context) {
          const tool = plugin.tools.get(name);
          if (!tool) throw new CapstanError('not-found').toWit();
          try {
            return JSON.stringify(tool.fn(JSON.parse(args), context));
          } catch (error) {
            if (error instanceof CapstanError) throw error.toWit();
            throw new CapstanError('invalid-input', String(error?.message ?? error)).toWit();
          }
        },
      },
    };
  }
}

/** Key-value storage over the imported `capstan:plugin/kv` binding. */
export function kvStore(binding) {
  return {
    get: (key) => call(binding.get, key),
    getText: (key) => {
      const value = call(binding.get, key);
      return value === undefined ? undefined : decoder.decode(value);
    },
    set: (key, value) => call(binding.set, key, typeof value === 'string' ? encoder.encode(value) : value),
    delete: (key) => call(binding.delete, key),
    increment: (key, delta = 1) => Number(call(binding.increment, key, BigInt(delta))),
  };
}

/** Logging over the imported `capstan:plugin/log` binding. */
export function logger(binding) {
  const at = (level) => (message) => binding.write(level, String(message));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Secrets over the imported `capstan:plugin/secrets` binding. */
export function secretStore(binding) {
  return { get: (name) => call(binding.get, name) };
}

/** Settings over the imported `capstan:plugin/config` binding (values decoded from JSON). */
export function settings(binding) {
  return {
    get: (key) => {
      const text = call(binding.get, key);
      return text === undefined ? undefined : JSON.parse(text);
    },
  };
}

/** Outbound HTTP over the imported `capstan:plugin/http` binding. */
export function httpClient(binding) {
  return {
    fetch(url, { method = 'get', headers = [], body, timeoutMs } = {}) {
      const answer = call(binding.send, {
        method: method.toLowerCase(),
        url,
        headers,
        body: typeof body === 'string' ? encoder.encode(body) : body,
        timeoutMs,
        clientCert: undefined,
      });
      return { status: answer.status, headers: answer.headers, body: answer.body, text: () => decoder.decode(answer.body) };
    },
  };
}
