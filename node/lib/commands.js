'use strict';
// What an entry point asks of the engine, batched: commands (in the core's JSON
// form, `{"<op>": {...}}`) are queued as the app gives them and handed over once
// per tick in one call, which the engine applies in order. A query first hands
// over what is queued, so that it sees every command given before it.

const { fromNative, reportError } = require('./native');

class CommandBatch {
  /**
   * @param {import('./host').EngineHost} host the engine the commands go to
   * @param {import('node:events').EventEmitter} reportTo where faults are reported
   */
  constructor(host, reportTo) {
    this._host = host;
    this._reportTo = reportTo;
    this._commands = [];
    this._buffers = [];
    this._scheduled = false;
    /** Set while the server closes: commands then go to connections on their way out. */
    this.closing = false;
  }

  /**
   * Queues one command; `buffers` are the binary attachments its arguments name
   * (placeholders `{"_placeholder":true,"num":n}`), counted into its `bin`.
   */
  push(command, buffers) {
    if (!this._host.engine) return;
    if (buffers && buffers.length > 0) {
      command[Object.keys(command)[0]].bin = buffers.length;
      for (const buffer of buffers) this._buffers.push(buffer);
    }
    this._commands.push(command);
    if (!this._scheduled) {
      this._scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Hands what is queued to the engine now. */
  flush() {
    this._scheduled = false;
    const commands = this._commands;
    const buffers = this._buffers;
    this._commands = [];
    this._buffers = [];
    const engine = this._host.engine;
    if (!engine || commands.length === 0 || this.closing) return;
    try {
      engine.run(JSON.stringify(commands), buffers.length > 0 ? buffers : undefined);
    } catch (error) {
      const fault = fromNative(error);
      // What handlers still send while the server closes goes to connections
      // that are going away: as in socket.io and ws, that is no error.
      if (fault.code !== 'ERR_PALAVER_CLOSED') reportError(this._reportTo, fault);
    }
  }
}

module.exports = { CommandBatch };
