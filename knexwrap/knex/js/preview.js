// The SQL a plan would send, obtained by running it through the project's own knex, never on the live data.
//
// Input (environment, never argv):
//   KNEX_PATH          the project's knex/knex.js
//   KNEXWRAP_PREVIEW   JSON {"mode", "config", ...}; the password, if any, in KNEXWRAP_PASSWORD
// Modes:
//   "copy"   {"config" (knex config of a scratch copy, with migrations), "action": "apply"|"revert", "names"}
//            runs knex.migrate.up/down({name}) for each name, in order, on the copy.
//   "live"   same input, on the live database (PostgreSQL): every migration's up/down runs inside one
//            transaction that is always rolled back, under lock_timeout and statement_timeout ("timeouts").
//   "count"  {"config", "tables": [[table, column|null], ...]}: live row counts, in a read-only transaction.
// Output: one JSON document on stdout:
//   copy/live: {"migrations": [{"name", "direction", "source", "transaction", "statements": [{"sql",
//               "bindings", "bookkeeping"}], "dropped": {"tables", "columns"}, "error"}]}
//   count:     {"counts": [{"table", "column", "rows", "values"}]}
'use strict';

const path = require('path');
const util = require('util');
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${util.format(...args)}\n`);
}

const knexFactory = require(process.env.KNEX_PATH);

const COLUMNS = {
  pg: 'select table_name, column_name from information_schema.columns where table_schema = current_schema()',
  mysql2: 'select table_name, column_name from information_schema.columns where table_schema = database()',
  sqlite:
    "select m.name as table_name, p.name as column_name from sqlite_master m join pragma_table_info(m.name) p " +
    "where m.type = 'table' and m.name not like 'sqlite_%'",
};

function withPassword(config) {
  const copy = { ...config };
  if (process.env.KNEXWRAP_PASSWORD !== undefined && copy.connection) {
    copy.connection = { ...copy.connection, password: process.env.KNEXWRAP_PASSWORD };
  }
  return copy;
}

function rowsOf(result) {
  if (Array.isArray(result)) return Array.isArray(result[0]) ? result[0] : result; // mysql2, sqlite
  return result.rows;
}

// Every column of every table, "table.column": the plan's drops are what disappears from this set.
async function columns(knex, client) {
  const sql = COLUMNS[client] || COLUMNS.sqlite;
  const found = new Map();
  for (const row of rowsOf(await knex.raw(sql))) {
    const table = row.table_name ?? row.TABLE_NAME;
    const column = row.column_name ?? row.COLUMN_NAME;
    if (!found.has(table)) found.set(table, new Set());
    found.get(table).add(column);
  }
  return found;
}

function dropped(before, after, ignore) {
  const tables = [];
  const cols = [];
  for (const [table, names] of before) {
    if (ignore.has(table)) continue;
    if (!after.has(table)) {
      tables.push(table);
      continue;
    }
    for (const name of names) if (!after.get(table).has(name)) cols.push([table, name]);
  }
  return { tables, columns: cols };
}

// knex's bookkeeping (its migrations table and lock) is told apart from what the migration itself sends.
function isBookkeeping(query, tables) {
  const text = `${query.sql} ${JSON.stringify(query.bindings || [])}`;
  return tables.some(t => text.includes(t));
}

function loadMigration(directory, name) {
  const file = path.resolve(directory, name);
  const module = require(file);
  return module && module.default && !module.up ? module.default : module;
}

function describe(directory, name, direction) {
  let source = null;
  let transaction = true;
  try {
    const migration = loadMigration(directory, name);
    const fn = migration[direction];
    source = typeof fn === 'function' ? fn.toString() : null;
    transaction = !(migration.config && migration.config.transaction === false);
  } catch (err) {
    source = null;
  }
  return { name, direction, source, transaction, statements: [], dropped: { tables: [], columns: [] }, error: null };
}

function errorOf(err) {
  return { code: err && err.code ? String(err.code) : null, message: String((err && err.message) || err) };
}

async function copyRun(request) {
  const config = withPassword(request.config);
  const knex = knexFactory({ ...config, pool: { min: 0, max: 1 } });
  const { directory, tableName } = config.migrations;
  const bookkeeping = [tableName, `${tableName}_lock`];
  const direction = request.action === 'apply' ? 'up' : 'down';
  const results = [];
  let current = null;
  knex.on('query', query => {
    if (current) {
      current.statements.push({ sql: query.sql, bindings: query.bindings || [], bookkeeping: isBookkeeping(query, bookkeeping) });
    }
  });
  try {
    for (const name of request.names) {
      const entry = describe(directory, name, direction);
      results.push(entry);
      const before = await columns(knex, config.client);
      current = entry;
      try {
        await knex.migrate[direction]({ ...config.migrations, name });
      } catch (err) {
        entry.error = errorOf(err);
        break;
      } finally {
        current = null;
      }
      entry.dropped = dropped(before, await columns(knex, config.client), new Set(bookkeeping));
    }
  } finally {
    await knex.destroy();
  }
  return { migrations: results };
}

class RolledBack extends Error {}

async function liveRun(request) {
  const config = withPassword(request.config);
  const knex = knexFactory({ ...config, pool: { min: 0, max: 1 } });
  const { directory } = config.migrations;
  const direction = request.action === 'apply' ? 'up' : 'down';
  const results = [];
  let current = null;
  knex.on('query', query => {
    if (current) current.statements.push({ sql: query.sql, bindings: query.bindings || [], bookkeeping: false });
  });
  try {
    await knex.transaction(async trx => {
      await trx.raw(`set local lock_timeout = ${Number(request.timeouts.lock_ms)}`);
      await trx.raw(`set local statement_timeout = ${Number(request.timeouts.statement_ms)}`);
      for (const name of request.names) {
        const entry = describe(directory, name, direction);
        results.push(entry);
        if (!entry.transaction) {
          entry.error = { code: 'no_transaction', message: `${name} runs without a transaction: not run live` };
          break;
        }
        const before = await columns(trx, config.client);
        current = entry;
        try {
          await loadMigration(directory, name)[direction](trx);
        } catch (err) {
          entry.error = errorOf(err);
          break;
        } finally {
          current = null;
        }
        entry.dropped = dropped(before, await columns(trx, config.client), new Set());
      }
      throw new RolledBack('always rolled back');
    });
  } catch (err) {
    if (!(err instanceof RolledBack)) throw err;
  } finally {
    await knex.destroy();
  }
  return { migrations: results };
}

async function countRun(request) {
  const config = withPassword(request.config);
  if (config.connection && config.connection.filename) {
    config.connection = { ...config.connection, options: { readonly: true, fileMustExist: true } };
  }
  const knex = knexFactory({ ...config, pool: { min: 0, max: 1 } });
  const counts = [];
  try {
    const readOnly = config.client === 'pg' || config.client === 'mysql2';
    await knex.transaction(
      async trx => {
        for (const [table, column] of request.tables) {
          const [{ n }] = await trx(table).count({ n: '*' });
          let values = null;
          if (column) {
            const [{ v }] = await trx(table).whereNotNull(column).count({ v: '*' });
            values = Number(v);
          }
          counts.push({ table, column, rows: Number(n), values });
        }
      },
      readOnly ? { readOnly: true } : {},
    );
  } finally {
    await knex.destroy();
  }
  return { counts };
}

async function main() {
  const request = JSON.parse(process.env.KNEXWRAP_PREVIEW || '{}');
  const run = { copy: copyRun, live: liveRun, count: countRun }[request.mode];
  if (!run) throw new Error(`unknown preview mode ${request.mode}`);
  process.stdout.write(JSON.stringify(await run(request)) + '\n');
}

main().catch(err => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
