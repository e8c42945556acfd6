// tests/e2e/jwt_node/mint.js: prints a token signed with jsonwebtoken, as seed 000 mints one:
//   jwt.sign(payload, secret, { algorithm: 'HS256', keyid: key })
// Usage: node mint.js '<payload json>' '<secret or PEM>' '<options json>'
// A payload without exp gets exp = now + 300 s when options.seed_exp is set (the seed's
// Math.floor(Date.now() / 1000) + (60 * 5)); seed_exp itself is not passed to sign().
'use strict';
const jwt = require('jsonwebtoken');

const payload = JSON.parse(process.argv[2]);
const secret = process.argv[3];
const options = JSON.parse(process.argv[4] || '{}');
if (options.seed_exp) {
  payload.exp = Math.floor(Date.now() / 1000) + (60 * 5);
}
delete options.seed_exp;
const token = jwt.sign(payload, secret, options);
console.log(token);
