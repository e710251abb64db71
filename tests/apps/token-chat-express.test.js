'use strict';
// examples/socketio-apps/token-chat-express: tutorial 004's token chat (its
// websocketServer.js with the require line changed to palaver/socket.io) in an Express
// app. The tests are tests/support/token-chat.js, shared with the Koa app.

const { tokenChatSuite } = require('../support/token-chat');

tokenChatSuite('token-chat-express');
