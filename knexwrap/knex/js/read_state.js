// Reads knex's migration bookkeeping without changing anything, through the project's own knex.
// The Knex CLI cannot do this: migrate:list and migrate:currentVersion create the tables they read,
// and no CLI command shows batches, run times or the lock.
//
// Input (environment, never argv):
//   KNEX_PATH            the project's knex/knex.js
//   KNEXWRAP_READ        JSON list of {"id", "config", "tables", "passwordEnv"?, "listDatabases"?}
//   the variable named by passwordEnv holds that target's password
// Output: one JSON list on stdout, one entry per target: {"id", "tables": {...}}, {"id", "databases": [...]}
// or {"id", "error"}; a line "done <id>" on stderr as each target finishes (knexwrap's progress).
'use strict';

// stdout carries the one JSON answer: whatever knex or a driver logs (knex 3.3 logs connection errors
// with console.log) goes to stderr instead.
const util = require('util');
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${util.format(...args)}\n`);
}

const knexFactory = require(process.env.KNEX_PATH);
const { inUtc } = require('./utc');

function isoTime(value) {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

async function readTable(knex, table) {
  if (!(await knex.schema.hasTable(table))) {
    return { exists: false, rows: [], lock: { exists: false, locked: false } };
  }
  const rows = await knex(table).select('name', 'batch', 'migration_time').orderBy('id');
  const lockTable = `${table}_lock`;
  const lockExists = await knex.schema.hasTable(lockTable);
  const lockRows = lockExists ? await knex(lockTable).select('is_locked') : [];
  return {
    exists: true,
    rows: rows.map(r => ({ name: r.name, batch: Number(r.batch), migration_time: isoTime(r.migration_time) })),
    lock: { exists: lockExists, locked: lockRows.some(r => Number(r.is_locked) === 1) },
  };
}

// Knex has no API to list databases: the one statement per server kind that it needs.
const LIST_DATABASES = {
  pg: 'select datname as name from pg_database where datistemplate = false',
  mysql2: 'select schema_name as name from information_schema.schemata',
};

async function listDatabases(knex, client) {
  const result = await knex.raw(LIST_DATABASES[client]);
  const rows = Array.isArray(result) ? result[0] : result.rows;
  return rows.map(r => r.name ?? r.NAME ?? r.SCHEMA_NAME);
}

// Sessions of a running Backstage backend: it names its connections backstage_plugin_<id> and
// re-applies migrations when it starts, so a downgrade under it would be undone.
async function backendSessions(knex) {
  const result = await knex.raw(
    "select application_name, coalesce(host(client_addr), 'local') as client, backend_start " +
      "from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() " +
      "and application_name like 'backstage_plugin_%'",
  );
  return result.rows.map(r => ({ application_name: r.application_name, client: r.client, since: isoTime(r.backend_start) }));
}

// Backstage's schema mode puts a plugin's tables in its own schema (knex searchPath). A schema that does
// not exist yet reads like an empty one, and knex would fail to create its tables there: say so instead.
async function missingSchema(knex, config) {
  const schema = config.client === 'pg' && Array.isArray(config.searchPath) ? config.searchPath[0] : undefined;
  if (!schema) return null;
  const result = await knex.raw('select 1 from pg_namespace where nspname = ?', [schema]);
  if (result.rows.length > 0) return null;
  return { code: '3F000', message: `schema "${schema}" does not exist in database "${config.connection.database}"` };
}

async function readTarget(target) {
  const config = { ...target.config, pool: { min: 0, max: 1 } };
  const password = target.passwordEnv ? process.env[target.passwordEnv] : undefined;
  if (password !== undefined && config.connection) {
    config.connection = { ...config.connection, password };
  }
  const knex = knexFactory(inUtc(config));
  try {
    if (target.listDatabases) {
      return { id: target.id, databases: await listDatabases(knex, config.client) };
    }
    const noSchema = await missingSchema(knex, config);
    if (noSchema) {
      return { id: target.id, error: noSchema };
    }
    const tables = {};
    for (const table of target.tables) {
      tables[table] = await readTable(knex, table);
    }
    if (target.sessions) {
      return { id: target.id, tables, sessions: await backendSessions(knex) };
    }
    return { id: target.id, tables };
  } catch (err) {
    return { id: target.id, error: { code: err.code ? String(err.code) : null, message: String(err.message || err) } };
  } finally {
    await knex.destroy();
    process.stderr.write(`done ${target.id}\n`);
  }
}

async function main() {
  const targets = JSON.parse(process.env.KNEXWRAP_READ || '[]');
  const results = await Promise.all(targets.map(readTarget));
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch(err => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
