// Type-checked (never run) by types.test.js: the package from an ES module
// (module nodenext), where the default import is module.exports itself.
import palaver, { Server, PalaverError } from 'palaver';
import type { ServerOptions } from 'palaver';
import { createServer } from 'node:http';

const options: ServerOptions = { history: { storage: 'memory' } };
const chat: Server = palaver(createServer(), options);
const other: Server = new palaver.Server(options).listen(0);
const error: PalaverError = new PalaverError('ERR_PALAVER_INVALID_ARG', 'bad');
chat.on('message', (event) => void event.message.text);
await Promise.all([chat.close(), other.close()]);
void error;
