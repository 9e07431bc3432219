// Holds knexwrap's own lock of one migration set for as long as a change runs (PostgreSQL, MySQL/MariaDB).
// knex's lock row has no owner and no time (knex #2502) and a second run can wait on it forever; this lock
// is tried once (never waited on), names its holder, and dies with its session.
//
// Input (environment): KNEX_PATH, KNEXWRAP_LOCK = {"config", "table", "key", "passwordEnv", "cancel"?}
// (cancel: the application_name of the change's knex sessions, cancelled on SIGUSR2).
// Output: one JSON line on stdout, then the process waits:
//   {"held": true, "knexLock": {"rows", "free", "locked", "busy"}}   (knex's own lock, looked at, never waited on)
//   {"held": false, "holder": {"who", "client", "since"} | null}
//   {"error": {"code", "message"}}
// It releases and exits on SIGTERM/SIGINT, or as soon as its parent (knexwrap) is gone.
'use strict';

const os = require('os');
const util = require('util');
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${util.format(...args)}\n`);
}

const knexFactory = require(process.env.KNEX_PATH);
const input = JSON.parse(process.env.KNEXWRAP_LOCK);
const parent = process.ppid;
const isPg = input.config.client === 'pg';

const config = { ...input.config, pool: { min: 1, max: 1 } };
const password = input.passwordEnv ? process.env[input.passwordEnv] : undefined;
config.connection = { ...config.connection, ...(password !== undefined ? { password } : {}) };
if (isPg) {
  config.connection.application_name = `knexwrap lock ${os.hostname()} pid ${parent}`.slice(0, 63);
}
const knex = knexFactory(config);

function rowsOf(result) {
  return Array.isArray(result) ? result[0] : result.rows;
}

async function tryLock() {
  if (isPg) {
    const ok = rowsOf(await knex.raw('select pg_try_advisory_lock(hashtext(?)) as ok', [input.key]))[0].ok;
    return Boolean(ok);
  }
  const ok = rowsOf(await knex.raw('select get_lock(?, 0) as ok', [input.key]))[0].ok;
  return Number(ok) === 1;
}

async function holder() {
  if (isPg) {
    const rows = rowsOf(
      await knex.raw(
        "select a.application_name as who, coalesce(host(a.client_addr), 'local') as client, a.backend_start as since " +
          'from pg_locks l join pg_stat_activity a on a.pid = l.pid ' +
          "where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database where datname = current_database()) " +
          'and l.objid = (hashtext(?)::bigint & 4294967295)::oid',
        [input.key],
      ),
    );
    return rows[0] ? { who: rows[0].who, client: rows[0].client, since: new Date(rows[0].since).toISOString() } : null;
  }
  const rows = rowsOf(
    await knex.raw(
      'select p.user as who, p.host as client, p.time as seconds from information_schema.processlist p where p.id = is_used_lock(?)',
      [input.key],
    ),
  );
  return rows[0] ? { who: `connection of ${rows[0].who}`, client: rows[0].client, since: `${rows[0].seconds} s ago` } : null;
}

// knex's lock row(s), with FOR UPDATE NOWAIT: a knex run holding the row in its transaction is "busy" at once.
async function knexLock() {
  const table = `${input.table}_lock`;
  if (!(await knex.schema.hasTable(table))) return { rows: 0, free: 0, locked: false, busy: false };
  try {
    return await knex.transaction(async trx => {
      const rows = await trx(table).select('is_locked').forUpdate().noWait();
      const free = rows.filter(r => Number(r.is_locked) === 0).length;
      return { rows: rows.length, free, locked: rows.some(r => Number(r.is_locked) === 1), busy: false };
    });
  } catch (err) {
    if (['55P03', 'ER_LOCK_NOWAIT', 'ER_LOCK_WAIT_TIMEOUT'].includes(err.code) || err.errno === 3572) {
      return { rows: null, free: null, locked: true, busy: true };
    }
    throw err;
  }
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await knex.raw(isPg ? 'select pg_advisory_unlock(hashtext(?))' : 'select release_lock(?)', [input.key]);
  } catch (err) {
    // the session ends below, which releases the lock anyway
  }
  await knex.destroy().catch(() => {});
  process.exit(0);
}

async function main() {
  let answer;
  if (await tryLock()) {
    answer = { held: true, knexLock: await knexLock() };
  } else {
    answer = { held: false, holder: await holder() };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (!answer.held) {
    await knex.destroy();
    return;
  }
  process.on('SIGTERM', stop);
  // SIGUSR2: knexwrap was interrupted during a transactional migration; cancel its statement on the server.
  // Only sessions tagged with knexwrap's own application_name for this change are touched.
  process.on('SIGUSR2', () => {
    if (!isPg || !input.cancel) return;
    knex
      .raw(
        'select pg_cancel_backend(pid) from pg_stat_activity where application_name = ? and datname = current_database()',
        [input.cancel],
      )
      .then(() => process.stderr.write('cancelled\n'))
      .catch(err => process.stderr.write(`cancel failed: ${err.message}\n`));
  });
  process.on('SIGINT', () => {}); // Ctrl-C is knexwrap's to handle: the lock goes when knexwrap says so, or dies
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 200);
}

main().catch(async err => {
  process.stdout.write(`${JSON.stringify({ error: { code: err.code ? String(err.code) : null, message: String(err.message || err) } })}\n`);
  await knex.destroy().catch(() => {});
  process.exit(1);
});
