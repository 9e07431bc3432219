// Creates a plugin's missing database or schema the way the backend's ensureExists does
// (ensurePgDatabaseExists, ensurePgSchemaExists, ensureMysqlDatabaseExists), through the project's knex.
// Run only by a change verb whose plan named the creation.
//
// Input (environment, never argv): KNEX_PATH; KNEXWRAP_ENSURE = JSON {"config", "kind": "database" |
// "schema", "name", "owner"?}; KNEXWRAP_PASSWORD. `config` connects to where the statement runs: the
// server's maintenance database for a database, the plugin's database for a schema.
// Output: one JSON line on stdout, {"created": true|false} (false: it existed by then).
'use strict';

const util = require('util');
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${util.format(...args)}\n`);
}

const knexFactory = require(process.env.KNEX_PATH);
const { withBackendSettings } = require('./backend');

async function exists(knex, client, kind, name) {
  if (kind === 'schema') {
    return (await knex.raw('select 1 from pg_namespace where nspname = ?', [name])).rows.length > 0;
  }
  if (client === 'pg') {
    return (await knex.raw('select 1 from pg_database where datname = ?', [name])).rows.length > 0;
  }
  const [rows] = await knex.raw('select 1 from information_schema.schemata where schema_name = ?', [name]);
  return rows.length > 0;
}

async function main() {
  const request = JSON.parse(process.env.KNEXWRAP_ENSURE);
  const config = withBackendSettings({ ...request.config, pool: { min: 0, max: 1 } });
  if (process.env.KNEXWRAP_PASSWORD !== undefined) {
    config.connection = { ...config.connection, password: process.env.KNEXWRAP_PASSWORD };
  }
  const knex = knexFactory(config);
  try {
    if (await exists(knex, config.client, request.kind, request.name)) return { created: false };
    if (request.kind === 'schema') {
      const owner = request.owner ? ' AUTHORIZATION ??' : '';
      await knex.raw(`CREATE SCHEMA IF NOT EXISTS ??${owner}`, [request.name, ...(request.owner ? [request.owner] : [])]);
    } else {
      await knex.raw('CREATE DATABASE ??', [request.name]);
    }
    return { created: true };
  } finally {
    await knex.destroy();
  }
}

main().then(
  result => process.stdout.write(JSON.stringify(result) + '\n'),
  err => {
    process.stderr.write(`Error: ${err.message || err}\n`);
    process.exit(1);
  },
);
