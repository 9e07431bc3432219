// Reads knex's migration bookkeeping without changing anything, through the project's own knex.
// The Knex CLI cannot do this: migrate:list and migrate:currentVersion create the tables they read,
// and no CLI command shows batches, run times or the lock.
//
// Input (never argv):
//   KNEX_PATH (environment)         the project's knex/knex.js
//   KNEXWRAP_PRELOAD (environment)  optional: a knex client whose driver to load while waiting for the request
//   stdin: one JSON request {"targets": [{"id", "config", "tables", "passwordEnv"?, "listDatabases"?,
//          "migrationTables"? (also list and read every table of knex's migrations shape),
//          "sourcesTable"? (Backstage's backstage_migration_sources_<pluginId>: read it where it exists),
//          "sourceContent"? (with each stored source's text)}],
//          "secrets": {name: password}, "limit"?: seconds per database}; a target's password is
//          secrets[passwordEnv]. An empty stdin (the parent gave up before asking: knexwrap's launcher
//          starts this early) means: exit, read nothing.
// Output: one JSON list on stdout, one entry per target: {"id", "tables": {...}, "sources"?: [...]}, {"id", "databases": [...]}
// or {"id", "error"}; a line "done <id>" on stderr as each target finishes (knexwrap's progress).
'use strict';

// Node 22.1+ keeps compiled code between runs; older Node (20 here) has no such function.
const nodeModule = require('module');
if (typeof nodeModule.enableCompileCache === 'function') nodeModule.enableCompileCache();

// stdout carries the one JSON answer: whatever knex or a driver logs (knex 3.3 logs connection errors
// with console.log) goes to stderr instead.
const path = require('path');
const util = require('util');
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${util.format(...args)}\n`);
}

const knexFactory = require(process.env.KNEX_PATH);
const { withBackendSettings } = require('./backend');
const { inUtc, isoTime } = require('./utc');

// The driver knex would load for this client, loaded through knex's own dialect so that its later
// require finds it cached. Only a guess (the launcher's): any failure is left to the real require.
function preloadDriver(client) {
  if (!client) return;
  try {
    const dialects = require(path.join(path.dirname(process.env.KNEX_PATH), 'lib', 'dialects'));
    dialects.getDialectByNameOrAlias(client).prototype._driver();
  } catch {
    // not preloaded: nothing is lost
  }
}

// At most this many targets are read at once: one connection each, whatever the size of the install.
const CONCURRENCY = 8;

async function readRequest() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() === '' ? null : JSON.parse(text);
}

// Which of NAMES exist, in one round trip where the dialect allows it; the same tables knex's
// schema.hasTable sees (SQLite: the main database; PostgreSQL: tablesOf).
const EXISTING_TABLES = {
  'better-sqlite3': "select name from sqlite_master where type = 'table' and name in (select value from json_each(?))",
  sqlite3: "select name from sqlite_master where type = 'table' and name in (select value from json_each(?))",
};

async function existingTables(knex, client, names) {
  const sql = EXISTING_TABLES[client];
  if (!sql) {
    const found = await Promise.all(names.map(async name => ((await knex.schema.hasTable(name)) ? name : null)));
    return new Set(found.filter(Boolean));
  }
  const result = await knex.raw(sql, [client === 'pg' ? names : JSON.stringify(names)]);
  const rows = Array.isArray(result) ? result : result.rows;
  return new Set(rows.map(r => r.name));
}

// Backstage's stored migration sources (backend-defaults MigrationStorage): one row per (table_name,
// migration_name) with the source text and its sha256 "checksum". Whether the checksum is the sha256 of the
// stored text is checked here, as Backstage computes it (of the text as UTF-8). The text itself leaves only
// when asked for (WITH_CONTENT: a downgrade's files, upgrade/stored.py, which checks it again).
async function readSources(knex, table, withContent) {
  const { createHash } = require('crypto');
  const rows = await knex(table).select('table_name', 'migration_name', 'checksum', 'source_content').orderBy('id');
  return rows.map(r => ({
    table: r.table_name,
    name: r.migration_name,
    checksum: r.checksum,
    verified: createHash('sha256').update(String(r.source_content)).digest('hex') === r.checksum,
    ...(withContent ? { content: String(r.source_content) } : {}),
  }));
}

async function readTable(knex, table, existing) {
  if (!existing.has(table)) {
    return { exists: false, rows: [], lock: { exists: false, locked: false, rows: 0, free: 0 } };
  }
  const rows = await knex(table).select('name', 'batch', 'migration_time').orderBy('id');
  const lockTable = `${table}_lock`;
  const lockExists = existing.has(lockTable);
  const lockRows = lockExists ? await knex(lockTable).select('is_locked') : [];
  return {
    exists: true,
    rows: rows.map(r => ({ name: r.name, batch: Number(r.batch), migration_time: isoTime(r.migration_time) })),
    // rows/free: knex takes its lock only when exactly one row is free; two first runs can leave two (knex #3538).
    lock: {
      exists: lockExists,
      locked: lockRows.some(r => Number(r.is_locked) === 1),
      rows: lockRows.length,
      free: lockRows.filter(r => Number(r.is_locked) === 0).length,
    },
  };
}

// Knex has no API to list databases: the one statement per server kind that it needs.
const LIST_DATABASES = {
  pg: 'select datname as name from pg_database where datistemplate = false',
  mysql2: 'select schema_name as name from information_schema.schemata',
};

function rowsOf(result) {
  return Array.isArray(result) ? result[0] : result.rows;
}

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

// Tables with knex's migrations shape (id, name, batch, migration_time) in the target's database or
// schema: the sets the database itself holds, whether or not an installed package claims them.
const SHAPE = ['id', 'name', 'batch', 'migration_time'];
const MIGRATION_TABLES = {
  mysql2:
    'select table_name as name from information_schema.columns where table_schema = database() ' +
    'and column_name in (?, ?, ?, ?) group by table_name having count(*) = 4',
  'better-sqlite3':
    "select m.name as name from sqlite_master m where m.type = 'table' and (select count(*) from " +
    'pragma_table_info(m.name) p where p.name in (?, ?, ?, ?)) = 4',
};

// PostgreSQL in one round trip, from pg_catalog (information_schema.columns alone costs several ms): the tables
// of the current schema the user may see as information_schema shows them (so, as knex's hasTable sees them),
// each with whether it has knex's migrations shape. Bindings: whether to list them all, else the wanted names.
const PG_TABLES =
  'select name, shaped from (select c.relname as name, (select count(*) from pg_attribute a where a.attrelid = c.oid ' +
  "and a.attnum > 0 and not a.attisdropped and a.attname in ('id', 'name', 'batch', 'migration_time') and " +
  "(pg_has_role(c.relowner, 'USAGE') or has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))) " +
  '= 4 as shaped from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = current_schema() ' +
  "and c.relkind in ('r', 'v', 'f', 'p') and (pg_has_role(c.relowner, 'USAGE') or has_table_privilege(c.oid, " +
  "'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') or has_any_column_privilege(c.oid, " +
  "'SELECT, INSERT, UPDATE, REFERENCES'))) t where ? or name = any(?)";

// Which of TABLES, their _lock tables and EXTRA (a name or undefined) exist (`existing`; with EVERY_SET it may hold
// other tables too), and with EVERY_SET the sorted names of every table of knex's migrations shape (`found`, else
// null).
async function tablesOf(knex, client, tables, everySet, extra) {
  const also = extra ? [extra] : [];
  if (client === 'pg') {
    const wanted = [...tables.flatMap(t => [t, `${t}_lock`]), ...also];
    const rows = (await knex.raw(PG_TABLES, [everySet, wanted])).rows;
    const found = everySet ? rows.filter(r => r.shaped).map(r => r.name).sort() : null;
    return { existing: new Set(rows.map(r => r.name)), found };
  }
  const found = everySet ? await migrationTables(knex, client) : null;
  const names = [...new Set([...tables, ...(found || [])])];
  return { existing: await existingTables(knex, client, [...names.flatMap(t => [t, `${t}_lock`]), ...also]), found };
}

async function migrationTables(knex, client) {
  const sql = MIGRATION_TABLES[client === 'sqlite3' ? 'better-sqlite3' : client];
  if (!sql) return [];
  const result = await knex.raw(sql, SHAPE);
  const rows = Array.isArray(result) ? (Array.isArray(result[0]) ? result[0] : result) : result.rows;
  return rows.map(r => r.name ?? r.NAME ?? r.TABLE_NAME).sort();
}

// One target's answer. Closing its connection takes a few ms more (PostgreSQL: Terminate, then the socket): that
// is pushed to CLOSES for the caller to await when it must (before opening another connection, or before exiting).
async function readTarget(target, secrets, closes) {
  const config = withBackendSettings({ ...target.config, pool: { min: 0, max: 1 } });
  const password = target.passwordEnv ? secrets[target.passwordEnv] : undefined;
  if (password !== undefined && config.connection) {
    config.connection = { ...config.connection, password };
  }
  const knex = knexFactory(inUtc(config));
  try {
    if (target.listDatabases) {
      return { id: target.id, databases: await listDatabases(knex, config.client) };
    }
    if (target.listTables) {
      // MySQL/MariaDB: each DDL statement commits on its own, so a failed migration can leave tables behind.
      const found = rowsOf(await knex.raw('select table_name as name from information_schema.tables where table_schema = database()'));
      return { id: target.id, allTables: found.map(r => r.name ?? r.NAME ?? r.TABLE_NAME).sort() };
    }
    const noSchema = await missingSchema(knex, config);
    if (noSchema) {
      return { id: target.id, error: noSchema };
    }
    const tables = {};
    // The sources table is asked about in the query that already looks for the tables, never on its own:
    // where that takes a query per table (MySQL), it is not looked for.
    const sources = config.client === 'pg' || EXISTING_TABLES[config.client] ? target.sourcesTable : undefined;
    const everySet = Boolean(target.migrationTables);
    const { existing, found } = await tablesOf(knex, config.client, target.tables, everySet, sources);
    const names = [...new Set([...target.tables, ...(found || [])])];
    for (const table of names) {
      tables[table] = await readTable(knex, table, existing);
    }
    const result = { id: target.id, tables };
    if (sources && existing.has(sources)) result.sources = await readSources(knex, sources, target.sourceContent);
    if (found) result.migrationTables = found;
    if (target.sessions) result.sessions = await backendSessions(knex);
    return result;
  } catch (err) {
    // Closed before the error is given: a server that accepted the connection and went silent keeps destroy()
    // waiting, and the target's limit (limited()) then says so, rather than knex's pool timeout.
    await knex.destroy();
    return { id: target.id, error: { code: err.code ? String(err.code) : null, message: String(err.message || err) } };
  } finally {
    process.stderr.write(`done ${target.id}\n`);
    closes.push(knex.destroy().catch(() => {}));
  }
}

// Each database has its own limit: a server that accepts and never answers is that target's error, and
// every other target is still reported. knex's own acquire timeout does not cover a connection that
// opened and then went silent, and destroying such a knex instance can hang as well.
function limited(target, secrets, seconds, closes) {
  if (!seconds) return readTarget(target, secrets, closes);
  const where = target.config.connection && target.config.connection.host
    ? `${target.config.connection.host}:${target.config.connection.port || ''}`.replace(/:$/, '')
    : 'the database';
  let timer;
  const expired = new Promise(resolve => {
    timer = setTimeout(() => {
      run.silent = true;
      process.stderr.write(`done ${target.id}\n`);
      resolve({ id: target.id, error: { code: 'ETIMEDOUT', message: `no answer from ${where} within ${seconds} s` } });
    }, seconds * 1000);
  });
  return Promise.race([readTarget(target, secrets, closes), expired]).finally(() => clearTimeout(timer));
}

// Every target, CONCURRENCY at a time (each under its own limit), the results in the order of the targets.
// CLOSING gets the closing of the last connections, which the answer need not wait for.
async function readAll(targets, secrets, seconds, closing) {
  const results = new Array(targets.length);
  let next = 0;
  async function worker() {
    while (next < targets.length) {
      const index = next++;
      const closes = [];
      results[index] = await limited(targets[index], secrets, seconds, closes);
      // Closed before this worker opens the next one: never more than CONCURRENCY connections at once.
      if (next < targets.length) await Promise.all(closes);
      else closing.push(...closes);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, targets.length) }, worker));
  return results;
}

// The answer is written before the last connections are closed; the exit waits for them, at most CLOSE_WAIT ms,
// and not at all once a server went silent (its connection may never close, and may fail later on its own).
const CLOSE_WAIT = 1000;
const run = { answered: false, silent: false };

// Once the answer is out, a connection failing on its own (a silent server's, late) changes nothing of it.
process.on('unhandledRejection', reason => {
  if (run.answered) return;
  process.stderr.write(`${(reason && reason.stack) || reason}\n`);
  process.exit(1);
});

async function main() {
  const pending = readRequest();
  let arrived = false;
  pending.then(() => (arrived = true), () => {});
  await new Promise(resolve => setImmediate(resolve));
  if (!arrived) preloadDriver(process.env.KNEXWRAP_PRELOAD); // idle until the request comes: use the wait
  const request = await pending;
  if (request === null) return;
  const closing = [];
  const results = await readAll(request.targets, request.secrets || {}, Number(request.limit || 0), closing);
  const waited = new Promise(resolve => setTimeout(resolve, run.silent ? 0 : CLOSE_WAIT).unref());
  run.answered = true;
  process.stdout.write(JSON.stringify(results) + '\n', () =>
    Promise.race([Promise.all(closing), waited]).then(() => process.exit(0)),
  );
}

main().catch(err => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
