// @ts-check
// PostgreSQL 15 with pg_cron: a cluster of the project's own under STATE_DIR,
// TCP on loopback with passwords only, started with pg_ctl.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { credentialFile, ensureCredentialsDir, newPassword, pgPassword, replaceLocalPassword } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';
import { setPassword, setRolePasswords, withPg } from '#lib/pg.mjs';
import { classifyPid, cmdline, isAlive, readText, stopPid } from '#lib/procs.mjs';
import { closeStateDirs, dataDir, digest, logFile } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

const PG_MAJOR = '15';
const APT_PACKAGES = [`postgresql-${PG_MAJOR}`, `postgresql-${PG_MAJOR}-cron`];

/** @param {Config} config */
export const pgDataDir = (config) => dataDir(config, 'postgres');

/**
 * The admin password .env committed until clusters got generated ones: a
 * cluster made with it is moved to a generated password on its next start.
 */
export const LEGACY_ADMIN_PASSWORD = 'admin_local_only';
/** Marks a generated admin password the cluster does not have yet (set on the next start). @param {Config} config */
const rotationMark = (config) => `${credentialFile(config, 'pg-admin')}.pending`;

/** Settings appended to the cluster's postgresql.conf through an include. @param {Config} config */
export function postgresConf(config) {
  const lines = {
    listen_addresses: `'${config.pg.host}'`,
    port: config.pg.port,
    // TCP only: no socket file to collide with a system server or to secure.
    unix_socket_directories: "''",
    shared_preload_libraries: "'pg_cron'",
    'cron.database_name': `'${config.pg.database}'`,
    // Jobs run in background workers, not over a libpq connection that would
    // need a password or a trust rule on our non-default port.
    'cron.use_background_workers': 'on',
    max_worker_processes: 16,
    max_connections: 100,
    shared_buffers: "'256MB'",
    password_encryption: "'scram-sha-256'",
    log_line_prefix: "'%m [%p] %q%u@%d '",
    // JIT compiles the expressions of any query costed above 100,000: reading
    // a summary view with 3,800 buckets pending spent 145 ms compiling for a
    // 70 ms query. Our queries are short aggregations (the container's
    // PostgreSQL has no LLVM at all).
    jit: 'off',
  };
  return Object.entries(lines)
    .map(([key, value]) => `${key} = ${value}`)
    .join('\n')
    .concat('\n');
}

/** Loopback only, passwords always. */
export const PG_HBA = [
  '# kafka-pg-pipeline: TCP on loopback with passwords, nothing else.',
  'host all all 127.0.0.1/32 scram-sha-256',
  '',
].join('\n');

/** @param {Config} config @returns {Service} */
export function postgresService(config) {
  const data = pgDataDir(config);
  const log = logFile(config, 'postgres');
  const pid = () => classifyPid(readText(path.join(data, 'postmaster.pid')), isAlive, cmdline, data);
  return {
    name: 'postgres',
    address: `${config.pg.host}:${config.pg.port}`,
    host: config.pg.host,
    ports: [{ key: 'PG_PORT', port: config.pg.port }],
    logFile: log,
    hint: 'check the log above; a cluster from another PostgreSQL version or a broken data folder is fixed by `npm run platform:down -- --purge`',
    after: [],
    check: () => pgCheck(config),
    // Our settings (postgresConf): a change restarts the server, as with the others.
    fingerprint: () => digest(postgresConf(config)),
    pid,
    // PostgreSQL clears a lock file whose pid is gone, but refuses to start
    // when that pid now belongs to another program: drop it for them.
    removePid: () => fs.rmSync(path.join(data, 'postmaster.pid'), { force: true }),
    async start() {
      ensurePostgresPackages(config, console.log);
      pgInit(config);
      adoptLegacyCluster(config);
      fs.mkdirSync(config.logDir, { recursive: true });
      fs.appendFileSync(log, '', { mode: 0o600 });
      chownPg(log);
      fs.chmodSync(log, 0o600);
      const { cmd, args } = asPg(path.join(config.pg.binDir, 'pg_ctl'), ['-D', data, '-l', log, '-W', 'start']);
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status !== 0) throw new UserError(`pg_ctl start failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
    },
    ready: () => {
      // A cluster already running from before generated passwords is adopted here too.
      if (fs.existsSync(path.join(data, 'PG_VERSION'))) adoptLegacyCluster(config);
      return pgPing(config);
    },
    async afterReady() {
      await rotateLegacyAdmin(config);
      await pgBootstrap(config);
      if (!(await cronReady(config)))
        throw new UserError(
          'pg_cron is not available in the database: check that postgresql-15-cron is installed and shared_preload_libraries holds pg_cron',
        );
    },
    async stop() {
      const info = pid();
      if (info.state !== 'running') return info.state === 'stale' ? `stale pid (${info.why})` : 'not running';
      const { cmd, args } = asPg(path.join(config.pg.binDir, 'pg_ctl'), ['-D', data, '-m', 'fast', '-t', '60', '-w', 'stop']);
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status === 0) return 'stopped';
      return stopPid(info.pid, 10_000);
    },
  };
}

/** Installs PostgreSQL 15 and pg_cron from Debian when missing. @param {Config} config @param {(line: string) => void} log */
export function ensurePostgresPackages(config, log) {
  const missing = [];
  if (!fs.existsSync(path.join(config.pg.binDir, 'postgres'))) missing.push(APT_PACKAGES[0]);
  if (!fs.existsSync(path.join(config.pg.binDir, '..', 'lib', 'pg_cron.so'))) missing.push(APT_PACKAGES[1]);
  if (missing.length === 0) return;
  const install = `apt-get install -y ${missing.join(' ')}`;
  const isRoot = process.getuid?.() === 0;
  const sudo = !isRoot && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!isRoot && !sudo) {
    throw new UserError(
      `PostgreSQL packages missing (${missing.join(', ')}): run \`sudo apt-get update && sudo ${install}\`, then run again`,
    );
  }
  const prefix = isRoot ? [] : ['sudo', '-n'];
  log(`installing ${missing.join(', ')} with apt-get`);
  // The system's packages get the system's usual umask, not our private one.
  const umask = process.umask(0o022);
  try {
    for (const args of [
      ['apt-get', 'update', '-qq'],
      ['apt-get', 'install', '-y', '-qq', ...missing],
    ]) {
      const cmd = [...prefix, ...args];
      const res = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      if (res.status !== 0) throw new UserError(`\`${cmd.join(' ')}\` failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
    }
  } finally {
    process.umask(umask);
  }
}

/** initdb and postgres refuse to run as root: as root, run them as the `postgres` user. */
function pgUser() {
  if (process.getuid?.() !== 0) return null;
  const res = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (res.status !== 0)
    throw new UserError(
      'running as root, but there is no `postgres` user to run PostgreSQL as: install postgresql-15 from Debian, which creates it',
    );
  return { uid: Number(res.stdout), gid: Number(gid.stdout) };
}

/** The group PostgreSQL's account passes our folders by, when we run as root and it exists. */
export function pgServiceGid() {
  if (process.getuid?.() !== 0) return undefined;
  const res = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  return res.status === 0 ? Number(res.stdout) : undefined;
}

/** @param {string} cmd @param {string[]} args */
function asPg(cmd, args) {
  return pgUser() ? { cmd: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] } : { cmd, args };
}

/** @param {string} file */
function chownPg(file) {
  const user = pgUser();
  if (user) fs.chownSync(file, user.uid, user.gid);
}

/** @param {Config} config */
async function pgPing(config) {
  try {
    return await withPg(config, { database: 'postgres' }, async (db) => (await db.query('SELECT 1')).rowCount === 1);
  } catch (err) {
    // A wrong password never gets better by waiting: say so now.
    if (/** @type {{ code?: string }} */ (err).code === '28P01')
      throw new UserError(
        `PostgreSQL in ${pgDataDir(config)} refused the admin password (${config.pg.adminPassword === undefined ? credentialFile(config, 'pg-admin') : 'PG_ADMIN_PASSWORD'}): set PG_ADMIN_PASSWORD to the one the cluster was made with, or start over with \`npm run platform:down -- --purge\` (deletes the data)`,
      );
    return false;
  }
}

/**
 * A cluster made before passwords were generated (with .env's committed
 * admin password, or one the user set there): without PG_ADMIN_PASSWORD and
 * a generated file, try the old default, marked for rotation once the server
 * answers. A cluster that refuses it gets the one line of pgPing.
 * @param {Config} config
 */
function adoptLegacyCluster(config) {
  if (config.pg.adminPassword !== undefined || fs.existsSync(credentialFile(config, 'pg-admin'))) return;
  ensureCredentialsDir(config);
  fs.writeFileSync(rotationMark(config), '', { mode: 0o600 });
  replaceLocalPassword(config, 'pg-admin', LEGACY_ADMIN_PASSWORD);
}

/** Moves a legacy cluster's admin off the committed default, to a generated password. @param {Config} config */
async function rotateLegacyAdmin(config) {
  if (!fs.existsSync(rotationMark(config))) return;
  const password = newPassword();
  await withPg(config, { database: 'postgres' }, (admin) => setPassword(admin, config.pg.adminUser, password));
  replaceLocalPassword(config, 'pg-admin', password);
  fs.rmSync(rotationMark(config), { force: true });
  console.log(`postgres: the admin's committed default password was replaced by a generated one (${credentialFile(config, 'pg-admin')})`);
}

/**
 * Databases, roles and the pg_cron extension the platform itself needs.
 * Idempotent: safe on every `up`.
 * @param {Config} config
 */
async function pgBootstrap(config) {
  await withPg(config, { database: 'postgres' }, async (admin) => {
    const { registry } = config;
    const dbExists = async (/** @type {string} */ name) =>
      (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
    if (!(await dbExists(config.pg.database))) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(config.pg.database)}`);
    const role = pg.escapeIdentifier(registry.user);
    const roleExists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [registry.user])).rowCount === 1;
    if (!roleExists) await admin.query(`CREATE ROLE ${role} LOGIN`);
    // Set on every run: a password given in the environment, or the generated one, is the single source.
    await setPassword(admin, registry.user, /** @type {string} */ (pgPassword(config, 'registry', { create: true })));
    // The component roles' passwords exist before the services that log in
    // with them start (the dashboard, Connect); set on roles made before.
    await setRolePasswords(admin, config);
    if (!(await dbExists(registry.database))) {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(registry.database)} OWNER ${role}`);
      await admin.query(`REVOKE ALL ON DATABASE ${pg.escapeIdentifier(registry.database)} FROM PUBLIC`);
    }
  });
  await withPg(config, 'admin', (db) => db.query('CREATE EXTENSION IF NOT EXISTS pg_cron'));
}

/** @param {Config} config */
async function cronReady(config) {
  try {
    return await withPg(
      config,
      'admin',
      async (db) => (await db.query("SELECT 1 FROM pg_namespace WHERE nspname = 'cron'")).rowCount === 1,
    );
  } catch {
    return false;
  }
}

/** A data folder we cannot use fails `up` before anything starts. @param {Config} config */
function pgCheck(config) {
  const data = pgDataDir(config);
  const version = readText(path.join(data, 'PG_VERSION'))?.trim();
  if (version !== undefined && version !== PG_MAJOR) {
    throw new UserError(
      `${data} holds a PostgreSQL ${version} cluster, this project runs ${PG_MAJOR}: move the folder away or run \`npm run platform:down -- --purge\``,
    );
  }
  if (version === undefined && fs.existsSync(data) && fs.readdirSync(data).length > 0) {
    throw new UserError(`${data} is not empty but holds no PostgreSQL cluster: remove it or run \`npm run platform:down -- --purge\``);
  }
}

/** @param {Config} config */
function pgInit(config) {
  const data = pgDataDir(config);
  pgCheck(config);
  const version = readText(path.join(data, 'PG_VERSION'))?.trim();
  if (version === undefined) {
    // Only the cluster folder is private: its parents must stay traversable
    // for the postgres user when we run as root.
    fs.mkdirSync(path.dirname(data), { recursive: true });
    // As root, the postgres user passes through our private folders by its group.
    closeStateDirs(config, { gid: pgUser()?.gid });
    fs.mkdirSync(data, { mode: 0o700 });
    chownPg(data);
    const pwfile = path.join(config.runDir, 'pg-initial-password');
    fs.writeFileSync(pwfile, `${pgPassword(config, 'admin', { create: true })}\n`, { mode: 0o600 });
    chownPg(pwfile);
    try {
      const { cmd, args } = asPg(path.join(config.pg.binDir, 'initdb'), [
        '-D',
        data,
        '-U',
        config.pg.adminUser,
        `--pwfile=${pwfile}`,
        '-A',
        'scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C.UTF-8',
      ]);
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status !== 0) throw new UserError(`initdb failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
    } finally {
      fs.rmSync(pwfile, { force: true });
    }
    fs.writeFileSync(path.join(data, 'pg_hba.conf'), PG_HBA);
    fs.appendFileSync(path.join(data, 'postgresql.conf'), "\ninclude_if_exists = 'kafka-pg-pipeline.conf'\n");
  }
  const conf = path.join(data, 'kafka-pg-pipeline.conf');
  fs.writeFileSync(conf, postgresConf(config), { mode: 0o600 });
  fs.chmodSync(conf, 0o600);
  chownPg(conf);
}
