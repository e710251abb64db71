'use strict';
// The chat attached to an Express 5 app (see attached-suite.js for the checks).

const express = require('express');
const { defineAttachedSuite } = require('./attached-suite');

defineAttachedSuite('express', () => {
  const app = express();
  app.use(express.json());
  app.get('/api/health', (req, res) => res.json({ ok: true, framework: 'express' }));
  app.post('/api/echo', (req, res) => res.json({ received: req.body }));
  return app;
});
