// What Backstage's database connectors do to a plugin's knex beyond its configuration, shared by
// knexfile.js and read_state.js: createPgDatabaseClient runs `SET ROLE <role>` (pg-format %I) on every
// new connection when backend.database.role (or plugin.<id>.role) is set. knexwrap hands the role
// over as `knexwrapRole`, a key knex itself never sees.
'use strict';

function quoteIdentifier(name) {
  return `"${String(name).replace(/"/g, '""')}"`;
}

function withBackendSettings(config) {
  const { knexwrapRole: role, ...rest } = config;
  if (!role) return rest;
  const statement = `SET ROLE ${quoteIdentifier(role)}`;
  // knexwrap's own afterCreate (a change's lock_timeout) runs after the role is set, on the same connection.
  const previous = rest.pool && rest.pool.afterCreate;
  const afterCreate = (connection, done) => {
    connection.query(statement).then(
      () => (previous ? previous(connection, done) : done(null, connection)),
      err => done(err, connection),
    );
  };
  return { ...rest, pool: { ...(rest.pool || {}), afterCreate } };
}

module.exports = { withBackendSettings };
