'use strict';
// The private native binding and what every entry point shares about it: loading
// it once, its errors (stable `ERR_PALAVER_...` codes), and the configuration's
// key style.

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
      emitter.emit('error', error);
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
  hostEventKinds,
  reportError,
};
