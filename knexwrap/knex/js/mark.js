// Records or removes one migration's row in a knex migrations table without running the migration
// (`knexwrap mark`), written exactly as knex's Migrator writes it (lib/migrations/migrate/Migrator.js,
// _waterfallBatch: insert {name, batch, migration_time: new Date()}, delete where {name}), through the
// project's knex with the same settings as knexwrap's knexfile (UTC sessions, SET ROLE, searchPath).
//
// Input (environment, never argv): KNEX_PATH; KNEXWRAP_PASSWORD; KNEXWRAP_MARK = JSON
//   {"mode": "look"} + {"config", "table"}: where the table is (PostgreSQL's current schema) and whether it exists;
//   {"mode": "write", "config", "table", "action": "applied"|"reverted", "name", "batch", "applied": [[name, batch]]}:
//     in ONE transaction: knex's lock row is taken FOR UPDATE (NOWAIT) and must be free, the table's rows
//     (name, batch, id order) must equal `applied` (the plan), then the row is written or removed.
// Output: one JSON line on stdout:
//   look:  {"schema": string|null, "exists": bool}
//   write: {"done": true, "row": {"name", "batch", "migration_time"}, "count": n} | {"stale": [[name, batch]...]}
//          | {"locked": "held"|"busy"}; errors: {"error": {"code", "message"}} and exit 1.
'use strict';

const util = require('util');
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${util.format(...args)}\n`);
}

const knexFactory = require(process.env.KNEX_PATH);
const { withBackendSettings } = require('./backend');
const { inUtc, isoTime } = require('./utc');

const request = JSON.parse(process.env.KNEXWRAP_MARK);
const config = withBackendSettings(inUtc({ ...request.config, pool: { min: 0, max: 1 } }));
if (process.env.KNEXWRAP_PASSWORD !== undefined && config.connection) {
  config.connection = { ...config.connection, password: process.env.KNEXWRAP_PASSWORD };
}
const knex = knexFactory(config);
const isPg = config.client === 'pg';
const isMysql = ['mysql', 'mysql2'].includes(config.client);

class Refused extends Error {
  constructor(answer) {
    super('refused');
    this.answer = answer;
  }
}

async function look() {
  const schema = isPg ? (await knex.raw('select current_schema() as name')).rows[0].name : null;
  return { schema, exists: await knex.schema.hasTable(request.table) };
}

// knex's lock row, held by this transaction until it ends: a knex run cannot take it meanwhile.
async function knexLock(trx) {
  const table = `${request.table}_lock`;
  if (!(await trx.schema.hasTable(table))) return;
  let rows;
  try {
    const query = trx(table).select('is_locked');
    // SQLite has no row locks: the transaction's own file lock serialises writers there.
    rows = await (isPg || isMysql ? query.forUpdate().noWait() : query);
  } catch (err) {
    if (['55P03', 'ER_LOCK_NOWAIT', 'ER_LOCK_WAIT_TIMEOUT'].includes(err.code) || err.errno === 3572) {
      throw new Refused({ locked: 'busy' });
    }
    throw err;
  }
  if (rows.some(r => Number(r.is_locked) === 1)) throw new Refused({ locked: 'held' });
}

function sameRows(found, expected) {
  return found.length === expected.length && found.every((r, i) => r.name === expected[i][0] && Number(r.batch) === expected[i][1]);
}

async function write() {
  return knex.transaction(async trx => {
    if (typeof trx.disableProcessing === 'function') trx.disableProcessing(); // as knex does for its bookkeeping
    await knexLock(trx);
    const table = request.table;
    const rows = await trx(table).select('name', 'batch').orderBy('id');
    if (!sameRows(rows, request.applied)) throw new Refused({ stale: rows.map(r => [r.name, Number(r.batch)]) });
    if (request.action === 'applied') {
      // The rows are the plan's (checked above): the batch the plan chose from them still holds.
      await trx.into(table).insert({ name: request.name, batch: request.batch, migration_time: new Date() });
    }
    const [row] = await trx(table).select('name', 'batch', 'migration_time').where({ name: request.name }).orderBy('id', 'desc').limit(1);
    const count = request.action === 'reverted' ? await trx.from(table).where({ name: request.name }).del() : 1;
    return { done: true, row: { name: row.name, batch: Number(row.batch), migration_time: isoTime(row.migration_time) }, count: Number(count) };
  });
}

async function main() {
  try {
    return request.mode === 'look' ? await look() : await write();
  } catch (err) {
    if (err instanceof Refused) return err.answer;
    throw err;
  } finally {
    await knex.destroy();
  }
}

main().then(
  answer => process.stdout.write(`${JSON.stringify(answer)}\n`),
  err => {
    process.stdout.write(`${JSON.stringify({ error: { code: err.code ? String(err.code) : null, message: String(err.message || err) } })}\n`);
    process.exit(1);
  },
);
