// utils/jwt: the module the tutorial's websocketServer.js requires ('../utils/jwt') but
// does not show; written the obvious way. HS256 tokens carrying {username}, signed with
// the secret in TOKEN_SECRET. verify(token) returns the payload, or false for a missing,
// malformed, forged or expired token.
const crypto = require('crypto');
const jsonwebtoken = require('jsonwebtoken');

let secret = process.env.TOKEN_SECRET;
if (!secret) {
  // Not a fixed default: a secret committed here would let anyone sign any name.
  secret = crypto.randomBytes(32).toString('hex');
  console.warn('TOKEN_SECRET is not set: tokens are signed with a random secret and end with this process');
}

const JWT = {
  // generate({username}, '1d') -> token
  generate(value, expires) {
    return jsonwebtoken.sign(value, secret, { algorithm: 'HS256', expiresIn: expires });
  },
  verify(token) {
    try {
      return jsonwebtoken.verify(token, secret, { algorithms: ['HS256'] });
    } catch (e) {
      return false;
    }
  },
};

module.exports = JWT;
