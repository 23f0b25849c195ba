// @ts-check
// The local platform's generated secrets: PostgreSQL's superuser and the
// component roles, the registry's role, the Kafka users, Connect's REST user.
// One file each under <STATE_DIR>/credentials (the folder 0700, the files
// 0600), made the first time a start needs them. A password set in .env or
// the environment always wins over these; on PLATFORM=external nothing is
// generated: what the user did not give is left to the services' own defaults.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.mjs';

/** @typedef {import('./config.mjs').Config} Config */
/** @typedef {'admin' | 'sink' | 'etl' | 'reader' | 'registry'} PgWho */

/** @param {Config} config */
export const credentialsDir = (config) => path.join(config.stateDir, 'credentials');

/** @param {Config} config @param {string} name */
export const credentialFile = (config, name) => path.join(credentialsDir(config), `${name}.password`);

/** The credentials folder, made private (also when it existed before). @param {Config} config */
export function ensureCredentialsDir(config) {
  const dir = credentialsDir(config);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** 24 random bytes as base64url: 192 bits, nothing a properties or conf file would need escaped. */
export const newPassword = () => crypto.randomBytes(24).toString('base64url');

/**
 * The generated password `name`, made now if `create` and missing.
 * @param {Config} config @param {string} name @param {{ create?: boolean, key?: string }} [opts]
 *   key: the setting that would give it instead, for the error message
 */
export function localPassword(config, name, { create = false, key } = {}) {
  const file = credentialFile(config, name);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
    if (!create)
      throw new UserError(
        `no password for ${name}: ${file} is missing; run \`npm run platform:up\` (it generates the local passwords)${key ? `, or set ${key}` : ''}`,
      );
  }
  ensureCredentialsDir(config);
  const password = newPassword();
  // wx: two `up`s at once never overwrite each other's password.
  try {
    fs.writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    return fs.readFileSync(file, 'utf8').trim();
  }
  return password;
}

/**
 * Replaces a generated password (the admin's, moved off a committed default):
 * written beside and renamed, so a reader sees the old file or the new one.
 * @param {Config} config @param {string} name @param {string} password
 */
export function replaceLocalPassword(config, name, password) {
  ensureCredentialsDir(config);
  const file = credentialFile(config, name);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${password}\n`, { mode: 0o600 });
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/** The keys that set each Kafka identity's password. */
const KAFKA_PASSWORD_KEYS = {
  admin: 'KAFKA_SASL_PASSWORD',
  producer: 'KAFKA_PRODUCER_SASL_PASSWORD',
  connect: 'KAFKA_CONNECT_SASL_PASSWORD',
  dashboard: 'KAFKA_DASHBOARD_SASL_PASSWORD',
};

/**
 * Who `who` is to Kafka: its user and password.
 * @param {Config} config @param {keyof Config['kafka']['users']} who @param {{ create?: boolean }} [opts]
 * @returns {{ username: string, password: string }}
 */
export function kafkaIdentity(config, who, { create = false } = {}) {
  const { username, password } = config.kafka.users[who];
  if (username === undefined) throw new UserError(`no Kafka user for the ${who}: set KAFKA_SASL_USERNAME`);
  if (password !== undefined) return { username, password };
  return { username, password: localPassword(config, `kafka-${username}`, { create, key: KAFKA_PASSWORD_KEYS[who] }) };
}

/** The file and the setting of each PostgreSQL identity's password. */
export const PG_SECRETS = /** @type {const} */ ({
  admin: { name: 'pg-admin', key: 'PG_ADMIN_PASSWORD' },
  sink: { name: 'pg-sink', key: 'PG_SINK_PASSWORD' },
  etl: { name: 'pg-etl', key: 'PG_ETL_PASSWORD' },
  reader: { name: 'pg-reader', key: 'PG_READER_PASSWORD' },
  registry: { name: 'pg-registry', key: 'REGISTRY_DB_PASSWORD' },
});

/**
 * The password of a PostgreSQL identity: the one given, else (local platform)
 * the generated one. Undefined on PLATFORM=external when none was given: the
 * client then falls back to PGPASSWORD or ~/.pgpass, as libpq does.
 * @param {Config} config @param {PgWho} who @param {{ create?: boolean }} [opts]
 * @returns {string | undefined}
 */
export function pgPassword(config, who, { create = false } = {}) {
  const given = who === 'admin' ? config.pg.adminPassword : who === 'registry' ? config.registry.password : config.pg.roles[who].password;
  if (given !== undefined) return given;
  if (config.platform !== 'local') return undefined;
  const { name, key } = PG_SECRETS[who];
  return localPassword(config, name, { create, key });
}

/** The user name of a PostgreSQL identity. @param {Config} config @param {PgWho} who */
export const pgUser = (config, who) =>
  who === 'admin' ? config.pg.adminUser : who === 'registry' ? config.registry.user : config.pg.roles[who].user;

/**
 * The basic-auth user of Connect's REST API, or null without authentication
 * (an external Connect that asks for none).
 * @param {Config} config @param {{ create?: boolean }} [opts]
 * @returns {{ username: string, password: string } | null}
 */
export function connectIdentity(config, { create = false } = {}) {
  const { auth, username, password } = config.connect;
  if (!auth || username === undefined) return null;
  if (password !== undefined) return { username, password };
  if (config.platform !== 'local') throw new UserError('CONNECT_USERNAME is set but CONNECT_PASSWORD is not: set both');
  return { username, password: localPassword(config, `connect-${username}`, { create, key: 'CONNECT_PASSWORD' }) };
}

/** An Authorization header value for basic authentication. @param {{ username: string, password: string }} who */
export const basicHeader = (who) => `Basic ${Buffer.from(`${who.username}:${who.password}`).toString('base64')}`;

/**
 * Basic authentication of the Schema Registry, if configured.
 * @param {Config} config @returns {{ username: string, password: string } | undefined}
 */
export function registryAuth(config) {
  const { username, password } = config.registry.auth;
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

/** A .pgpass field: ':' and '\' escaped, as libpq reads them. Pure. @param {string | number} field */
export const pgpassField = (field) => String(field).replace(/[\\:]/g, (c) => `\\${c}`);

/**
 * The files psql and curl read the generated secrets from, so the user's
 * habits stay one command: `credentials/pgpass` (PGPASSFILE: the admin and
 * every role on our port) and `credentials/connect.curlrc` (`curl -K`, Connect's
 * REST user). Only what exists is written; both 0600 in the 0700 folder.
 * @param {Config} config @returns {{ pgpass: string, curlrc: string }}
 */
export function writeClientRecipes(config) {
  const dir = ensureCredentialsDir(config);
  const { host, port } = config.pg;
  const lines = [];
  for (const who of /** @type {const} */ (['admin', 'sink', 'etl', 'reader'])) {
    let password;
    try {
      password = pgPassword(config, who);
    } catch {
      continue;
    }
    if (password !== undefined) lines.push([host, port, '*', pgUser(config, who), password].map(pgpassField).join(':'));
  }
  const pgpass = path.join(dir, 'pgpass');
  fs.writeFileSync(pgpass, lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
  fs.chmodSync(pgpass, 0o600);
  const curlrc = path.join(dir, 'connect.curlrc');
  let who = null;
  try {
    who = connectIdentity(config);
  } catch {
    who = null;
  }
  // curl's config syntax: a quoted value with \ and " escaped.
  const quoted = (/** @type {string} */ s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  fs.writeFileSync(curlrc, who ? `user = ${quoted(`${who.username}:${who.password}`)}\n` : '', { mode: 0o600 });
  fs.chmodSync(curlrc, 0o600);
  return { pgpass, curlrc };
}
