'use strict';
// examples/socketio-apps/token-chat-koa: tutorial 004's token chat (its webSocketServer.js
// with the require line changed to palaver/socket.io) in a Koa app. The tests are
// tests/support/token-chat.js, shared with the Express app.

const { tokenChatSuite } = require('../support/token-chat');

tokenChatSuite('token-chat-koa');
