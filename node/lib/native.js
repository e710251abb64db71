'use strict';
// The private native binding and what every entry point shares about it: loading
// it once, its errors (stable `ERR_PALAVER_...` codes), and the configuration's
// key style.

const { EventEmitter } = require('node:events');

let binding = null;

/** The native addon, loaded on first use. */
function native() {
  if (!binding) {
    try {
      binding = require('../native/binding.js');
    } catch (cause) {
      throw new PalaverError(
        'ERR_PALAVER_NOT_BUILT',
        'the native addon is not built; run `npm run build` in the palaver package (or `make node` in the repository)',
        { cause },
      );
    }
  }
  return binding;
}

/** An error with a stable `code` (ERR_PALAVER_...). */
class PalaverError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'PalaverError';
    this.code = code;
  }
}

/** Native errors carry "ERR_PALAVER_X: text"; give them their code back. */
function fromNative(error) {
  const match = /^(ERR_PALAVER_[A-Z_]+): ([\s\S]*)$/.exec(error && error.message);
  return match ? new PalaverError(match[1], match[2], { cause: error }) : error;
}

/** Awaits a native promise, with native errors turned into PalaverErrors. */
async function call(promise) {
  try {
    return await promise;
  } catch (error) {
    throw fromNative(error);
  }
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;
}

/** `{corsOrigins, limits: {maxTextChars}}` -> `{cors_origins, limits: {max_text_chars}}`. */
function toEngineConfig(options) {
  if (Array.isArray(options)) return options.map(toEngineConfig);
  if (!isPlainObject(options)) return options;
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    out[key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = toEngineConfig(value);
  }
  return out;
}

/**
 * Engine settings from the environment: `PALAVER_CONFIG` holds the engine
 * configuration as JSON, or the path of a JSON file. It lets an operator tune an
 * app (limits, cluster mode) without touching its code; settings the app passes
 * in its options win. Empty when unset.
 */
function configFromEnvironment() {
  const value = process.env.PALAVER_CONFIG;
  if (value === undefined || value.trim() === '') return {};
  let text = value;
  if (!value.trim().startsWith('{')) {
    try {
      text = require('node:fs').readFileSync(value, 'utf8');
    } catch (cause) {
      throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', `PALAVER_CONFIG: cannot read ${value}`, { cause });
    }
  }
  try {
    const parsed = JSON.parse(text);
    if (!isPlainObject(parsed)) throw new Error('not a JSON object');
    return toEngineConfig(parsed);
  } catch (cause) {
    throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', `PALAVER_CONFIG is not a JSON object: ${cause.message}`, {
      cause,
    });
  }
}

/** `base` with `over` on top, objects merged key by key (engine configurations). */
function mergeConfig(base, over) {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? mergeConfig(out[key], value) : value;
  }
  return out;
}

/** The events the engine reports to the host (its own list, read once). */
let hostEvents = null;
function hostEventKinds() {
  if (!hostEvents) hostEvents = native().eventKinds();
  return hostEvents;
}

/**
 * Reports an error a host handler threw: to the `error` listeners of
 * `emitter` when it has some, else as a process warning. Never throws: a
 * throwing handler must not take the process down.
 */
function reportError(emitter, error) {
  try {
    if (emitter && emitter.listenerCount('error') > 0) {
      // EventEmitter's own emit: a socket.io Server's `emit` is a broadcast to
      // clients, which must never carry a server error.
      EventEmitter.prototype.emit.call(emitter, 'error', error);
      return;
    }
  } catch (listenerError) {
    error = listenerError;
  }
  const warning = error instanceof Error ? error : new Error(String(error));
  process.emitWarning(warning, { type: 'PalaverHandlerError', detail: 'a handler threw; the server runs on' });
}

module.exports = {
  native,
  PalaverError,
  fromNative,
  call,
  isPlainObject,
  toEngineConfig,
  configFromEnvironment,
  mergeConfig,
  hostEventKinds,
  reportError,
};
