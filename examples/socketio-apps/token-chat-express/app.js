// The Express app around the tutorial's websocketServer.js (an express-generator layout:
// app.js, bin/www, bin/websocketServer.js, utils/jwt.js, views/). The tutorial shows only
// the chat module, the page and how the server is shared; the routes are the least the
// page needs to work end to end.
const path = require('path');
const express = require('express');
const JWT = require('./utils/jwt');

// Names the login route accepts: letters (any script), digits, _ . - ; at most 20.
// The tutorial's page puts names into innerHTML and unquoted attributes, so this route
// issues no token for a name that could carry markup.
const USERNAME = /^[\p{L}\p{N}_.-]{1,20}$/u;

const app = express();

// The chat page: the tutorial's views/index.ejs with its <%= title%> filled in.
app.get('/', (req, res) => {
  res.sendFile(path.join(__dirname, 'views', 'index.html'));
});

// The page loads /javascripts/socketio.js (in the tutorial, a copy of the Socket.IO
// client under public/): point it at the client the chat server itself serves.
app.get('/javascripts/socketio.js', (req, res) => {
  res.redirect('/socket.io/socket.io.js');
});

// Login: the page to type a name, and the route that issues a token for it.
app.get('/login', (req, res) => {
  res.sendFile(path.join(__dirname, 'views', 'login.html'));
});
app.post('/login', express.json(), (req, res) => {
  const username = req.body && req.body.username;
  if (typeof username !== 'string' || !USERNAME.test(username)) {
    res.status(400).json({ error: 'username: 1 to 20 letters, digits, _ . -' });
    return;
  }
  res.json({ token: JWT.generate({ username }, '1d') });
});

module.exports = app;
