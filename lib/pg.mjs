// @ts-check
// PostgreSQL clients: as the admin or as one of the component roles, opened
// and closed around a function so no caller repeats connect/try/finally.
import crypto from 'node:crypto';
import pg from 'pg';
import { pgPassword, pgUser } from './credentials.mjs';

/** @typedef {import('./config.mjs').Config} Config */
/** @typedef {'admin' | keyof Config['pg']['roles']} Role */

/**
 * A client (not yet connected) to `database` as `who`, the admin by default.
 * @param {Config} config @param {string} [database] @param {{ user?: string, password?: string }} [who]
 */
export function pgClient(config, database = config.pg.database, who = {}) {
  return new pg.Client({
    host: config.pg.host,
    port: config.pg.port,
    user: who.user ?? config.pg.adminUser,
    password: who.user === undefined ? pgPassword(config, 'admin') : who.password,
    database,
    connectionTimeoutMillis: 2000,
    ssl: pgSsl(config.pg.sslmode),
  });
}

/**
 * node-postgres's ssl option for a libpq sslmode. Pure.
 * @param {Config['pg']['sslmode']} mode
 * @returns {false | import('node:tls').ConnectionOptions}
 */
export function pgSsl(mode) {
  if (mode === 'disable') return false;
  // require: encrypted, the server not verified (libpq's meaning).
  if (mode === 'require') return { rejectUnauthorized: false };
  // verify-ca: a trusted chain, any host name; verify-full: both.
  if (mode === 'verify-ca') return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return { rejectUnauthorized: true };
}

/** Who a role is: its user name and password (given or generated). @param {Config} config @param {Exclude<Role, 'admin'>} role */
export const roleLogin = (config, role) => ({ user: pgUser(config, role), password: pgPassword(config, role) });

/** A client as one of the component roles. @param {Config} config @param {Exclude<Role, 'admin'>} role */
export function roleClient(config, role) {
  return pgClient(config, config.pg.database, roleLogin(config, role));
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802,
 * RFC 7677), as psql's \password sends it: ALTER ROLE ... PASSWORD with it
 * puts no cleartext password in the statement, the server's log or its
 * statistics. Written here because no maintained package builds one (pg
 * implements only the client side). The password is prepared as pg's client
 * and libpq prepare it (SASLprep's mappings and NFKC), so any password the
 * user gives logs in. Pure but for the random salt.
 * @param {string} password @param {{ salt?: Buffer, iterations?: number }} [opts]
 */
export function scramVerifier(password, { salt = crypto.randomBytes(16), iterations = 4096 } = {}) {
  const prepared = password
    .replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ')
    .replace(/\u00AD|\u034F|\u1806|[\u180B-\u180D]|\u200C|\u200D|\u2060|[\uFE00-\uFE0F]|\uFEFF/g, '')
    .normalize('NFKC');
  const salted = crypto.pbkdf2Sync(Buffer.from(prepared, 'utf8'), salt, iterations, 32, 'sha256');
  const hmac = (/** @type {string} */ text) => crypto.createHmac('sha256', salted).update(text).digest();
  const storedKey = crypto.createHash('sha256').update(hmac('Client Key')).digest();
  const serverKey = hmac('Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Sets a role's password as a verifier, never as cleartext SQL.
 * @param {pg.Client} client @param {string} role @param {string} password
 */
export async function setPassword(client, role, password) {
  await client.query(`ALTER ROLE ${client.escapeIdentifier(role)} PASSWORD ${client.escapeLiteral(scramVerifier(password))}`);
}

/**
 * Connects as `role` (to the pipeline's database unless another is named),
 * runs `fn`, and always closes the connection.
 * @template T
 * @param {Config} config
 * @param {Role | { role?: Role, database?: string }} who
 * @param {(client: pg.Client) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withPg(config, who, fn) {
  const { role = 'admin', database = config.pg.database } = typeof who === 'string' ? { role: who } : who;
  const client = role === 'admin' ? pgClient(config, database) : pgClient(config, database, roleLogin(config, role));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The component roles' passwords: on the local platform the generated ones
 * (made on first use), on an external database only those the user gave (a
 * role without one is left as it is). Roles not created yet are skipped:
 * migrations create them, then call this again.
 * @param {pg.Client} client @param {Config} config
 */
export async function setRolePasswords(client, config) {
  const local = config.platform === 'local';
  for (const role of /** @type {const} */ (['sink', 'etl', 'reader'])) {
    const password = pgPassword(config, role, { create: local });
    if (password === undefined) continue;
    const user = pgUser(config, role);
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user]);
    if (exists.rowCount === 1) await setPassword(client, user, password);
  }
}
