// The knexfile knexwrap hands to the real Knex CLI (`knex --knexfile <this file>`).
// The whole configuration arrives through the environment, so no secret ever shows in the
// process's argument list; the password travels on its own so it never sits in the JSON either.
//
// With KNEXWRAP_PLAN set (a change), the migrations come from a source wrapping the folder that
//  - before the first migration runs (knex holds its lock by then) re-reads the migrations table
//    and refuses to go on unless it is exactly the state the plan was made from;
//  - refuses any migration that is not the plan's next one, so what runs is the plan or an
//    in-order prefix of it;
//  - reports each migration as it starts and ends, one `knexwrap-event <json>` line on stderr;
//  - with plan.listed (up --to, down --to) shows knex only those files, so that migrate:latest applies
//    and migrate:rollback --all reverts exactly them, in knex's order, in one run under one lock. knex's
//    own check that every applied row has its file is then off: the rows not listed are applied files
//    hidden on purpose, and the check above (the table is exactly the plan's rows) covers what it covered.
// One source for every knex version (hooks exist only since 3.2; a source works since 0.21).
'use strict';

const fs = require('fs');
const path = require('path');
const { withBackendSettings } = require('./backend');

const raw = process.env.KNEXWRAP_CONFIG;
if (!raw) {
  throw new Error('KNEXWRAP_CONFIG is not set: this knexfile is only meant to be run by knexwrap');
}
const config = JSON.parse(raw);
if (process.env.KNEXWRAP_PASSWORD !== undefined && config.connection) {
  config.connection.password = process.env.KNEXWRAP_PASSWORD;
}

// knex's default loadExtensions (FsMigrations): the files knexwrap's plan was computed from.
const EXTENSIONS = ['.co', '.coffee', '.eg', '.iced', '.js', '.cjs', '.litcoffee', '.ls', '.ts'];
const STALE = 'knexwrap-stale:';
const STOPPED = 'knexwrap-stopped:';
// SIGUSR2 from knexwrap (Ctrl-C or SIGTERM on it): start no further migration; the running one is
// cancelled on the server or allowed to finish, knexwrap decides.
let stopRequested = false;

function emit(event) {
  process.stderr.write(`knexwrap-event ${JSON.stringify({ ...event, at: Date.now() })}\n`);
}

function load(file) {
  try {
    // knex's own loader also handles ES modules; its place is stable across 1.x-3.x.
    const importFile = require(path.join(path.dirname(process.env.KNEX_PATH), 'lib/migrations/util/import-file'));
    return importFile(file);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes('import-file')) throw err;
    return require(file);
  }
}

function sameRows(found, expected) {
  return (
    found.length === expected.length &&
    // A null batch: the plan knew the name only (a downgrade's recorded names), any batch will do.
    found.every((row, i) => row.name === expected[i][0] && (expected[i][1] === null || Number(row.batch) === expected[i][1]))
  );
}

class PlannedSource {
  constructor(directory, plan) {
    this.directory = path.resolve(directory);
    this.plan = plan;
    this.next = 0;
  }

  async getMigrations() {
    const files = await fs.promises.readdir(this.directory);
    const listed = this.plan.listed ? new Set(this.plan.listed) : null;
    return files
      .filter(f => EXTENSIONS.includes(path.extname(f)) && (!listed || listed.has(f)))
      .sort()
      .map(file => ({ file }));
  }

  getMigrationName(migration) {
    return migration.file;
  }

  async getMigration(migration) {
    const content = await load(path.join(this.directory, migration.file));
    const wrap = direction => async knex => {
      await this.check(knex, migration.file, direction);
      const transaction = Boolean(knex.isTransaction);
      emit({ event: 'start', name: migration.file, direction, transaction });
      try {
        const result = await content[direction](knex);
        emit({ event: 'end', name: migration.file, direction, transaction });
        return result;
      } catch (err) {
        emit({ event: 'fail', name: migration.file, direction, transaction, message: String(err.message || err) });
        throw err;
      }
    };
    return { ...content, up: wrap('up'), down: wrap('down') };
  }

  async check(knex, name, direction) {
    const plan = this.plan;
    if (stopRequested) {
      emit({ event: 'stopped', name, direction, transaction: Boolean(knex.isTransaction) });
      throw new Error(`${STOPPED} knexwrap was interrupted before ${name}`);
    }
    if (this.next === 0) {
      const rows = await knex(plan.table).select('name', 'batch').orderBy('id');
      if (!sameRows(rows, plan.applied)) {
        emit({ event: 'stale', name, direction, transaction: Boolean(knex.isTransaction) });
        throw new Error(`${STALE} the migrations table changed since the plan was shown`);
      }
      emit({ event: 'checked', name, direction, transaction: Boolean(knex.isTransaction) });
    }
    if (direction !== plan.direction || plan.names[this.next] !== name) {
      emit({ event: 'stale', name, direction, transaction: Boolean(knex.isTransaction) });
      throw new Error(`${STALE} knex was about to ${direction} ${name}, which is not the plan's next file`);
    }
    this.next += 1;
  }
}

if (process.env.KNEXWRAP_PLAN) {
  const plan = JSON.parse(process.env.KNEXWRAP_PLAN);
  process.on('SIGUSR2', () => {
    stopRequested = true;
  });
  // knex never outlives knexwrap: with knexwrap gone (killed outright), nobody would report what happened.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 500).unref();
  if (process.env.KNEXWRAP_APP_NAME && config.client === 'pg' && typeof config.connection === 'object') {
    // The tag knexwrap cancels a running statement by (pg_cancel_backend), never touching other sessions.
    config.connection.application_name = process.env.KNEXWRAP_APP_NAME;
  }
  const lockTimeout = Number(process.env.KNEXWRAP_LOCK_TIMEOUT || 0);
  if (lockTimeout && config.client === 'pg') {
    // --lock-timeout: one ALTER TABLE waiting for a busy table gives up instead of stalling every query
    // queued behind its lock request.
    config.pool = {
      ...(config.pool || {}),
      afterCreate: (conn, done) => conn.query(`set lock_timeout = ${Math.round(lockTimeout * 1000)}`, err => done(err, conn)),
    };
  }
  const { directory, ...migrations } = config.migrations;
  config.migrations = { ...migrations, migrationSource: new PlannedSource(directory, plan) };
  if (plan.listed) config.migrations.disableMigrationsListValidation = true;
}
module.exports = withBackendSettings(require('./utc').inUtc(config));
