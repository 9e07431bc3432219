// The knexfile knexwrap hands to the real Knex CLI (`knex --knexfile <this file>`).
// The whole configuration arrives through the environment, so no secret ever shows in the
// process's argument list; the password travels on its own so it never sits in the JSON either.
'use strict';

const raw = process.env.KNEXWRAP_CONFIG;
if (!raw) {
  throw new Error('KNEXWRAP_CONFIG is not set: this knexfile is only meant to be run by knexwrap');
}
const config = JSON.parse(raw);
if (process.env.KNEXWRAP_PASSWORD !== undefined && config.connection) {
  config.connection.password = process.env.KNEXWRAP_PASSWORD;
}
module.exports = require('./utc').inUtc(config);
