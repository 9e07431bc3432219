// Times in UTC whatever the operator's or the server's time zone.
// knex records migration_time in a MySQL/MariaDB TIMESTAMP column; mysql2 turns it into text in the
// session's time zone and reads that text back in the Node process's own zone (its default
// `timezone: 'local'`), so the same row read 05:55Z under TZ=UTC and 20:55Z the day before under
// TZ=Asia/Tokyo. A UTC session and `timezone: 'Z'` make the column's instant come and go unchanged.
'use strict';

const MYSQL_CLIENTS = new Set(['mysql', 'mysql2']);

function inUtc(config) {
  if (!MYSQL_CLIENTS.has(config.client) || typeof config.connection !== 'object' || config.connection === null) {
    return config;
  }
  const pool = { ...(config.pool || {}) };
  // Another afterCreate (the backend's role, a change's lock_timeout) still runs, on the UTC session.
  const previous = pool.afterCreate;
  pool.afterCreate = (connection, done) => {
    connection.query("SET time_zone = '+00:00'", err =>
      err || !previous ? done(err, connection) : previous(connection, done),
    );
  };
  return { ...config, connection: { ...config.connection, timezone: 'Z' }, pool };
}

// A time read back from any client, as UTC ISO 8601 (text the driver gave that is no date stays as it is).
function isoTime(value) {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

module.exports = { inUtc, isoTime };
