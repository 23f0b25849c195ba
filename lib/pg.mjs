// @ts-check
// PostgreSQL clients: as the admin or as one of the component roles, opened
// and closed around a function so no caller repeats connect/try/finally.
import pg from 'pg';

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
    password: who.password ?? config.pg.adminPassword,
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

/** A client as one of the component roles. @param {Config} config @param {Exclude<Role, 'admin'>} role */
export function roleClient(config, role) {
  const { user, password } = config.pg.roles[role];
  return pgClient(config, config.pg.database, { user, password });
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
  const client = role === 'admin' ? pgClient(config, database) : pgClient(config, database, config.pg.roles[role]);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
