// Reads knex's migration bookkeeping without changing anything, through the project's own knex.
// The Knex CLI cannot do this: migrate:list and migrate:currentVersion create the tables they read,
// and no CLI command shows batches, run times or the lock.
//
// Input (environment, never argv):
//   KNEX_PATH            the project's knex/knex.js
//   KNEXWRAP_READ        JSON list of {"id", "config", "tables", "passwordEnv"?}
//   the variable named by passwordEnv holds that target's password
// Output: one JSON list on stdout, one entry per target: {"id", "tables": {...}} or {"id", "error"}.
'use strict';

const knexFactory = require(process.env.KNEX_PATH);

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

async function readTarget(target) {
  const config = { ...target.config, pool: { min: 0, max: 1 } };
  const password = target.passwordEnv ? process.env[target.passwordEnv] : undefined;
  if (password !== undefined && config.connection) {
    config.connection = { ...config.connection, password };
  }
  const knex = knexFactory(config);
  try {
    const tables = {};
    for (const table of target.tables) {
      tables[table] = await readTable(knex, table);
    }
    return { id: target.id, tables };
  } catch (err) {
    return { id: target.id, error: { code: err.code ? String(err.code) : null, message: String(err.message || err) } };
  } finally {
    await knex.destroy();
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
