// @ts-check
// Migrations (node-pg-migrate over migrations/*.sql) and the roles' passwords.
import path from 'node:path';
import { runner } from 'node-pg-migrate';
import { pgPassword } from '#lib/credentials.mjs';
import { setPassword, withPg } from '#lib/pg.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * Applies (or reverts) migrations, then sets each component role's password:
 * migrations hold none.
 * @param {Config} config
 * @param {{ direction?: 'up' | 'down', count?: number, database?: string, log?: (line: string) => void }} [opts]
 */
export async function migrate(config, { direction = 'up', count, database = config.pg.database, log = () => {} } = {}) {
  return withPg(config, { database }, async (client) => {
    const applied = await runner({
      dbClient: client,
      dir: path.join(config.root, 'migrations'),
      migrationsTable: 'pgmigrations',
      direction,
      count: count ?? (direction === 'up' ? Infinity : 1),
      checkOrder: true,
      log,
    });
    if (direction === 'up') await setRolePasswords(client, config);
    return applied.map((m) => m.name);
  });
}

/**
 * The local platform's roles get their generated passwords (made on first
 * use); on an external database only the passwords the user gave are set, and
 * a role without one is left as it is. Always as SCRAM verifiers.
 * @param {import('pg').Client} client @param {Config} config
 */
export async function setRolePasswords(client, config) {
  const local = config.platform === 'local';
  for (const role of /** @type {const} */ (['sink', 'etl', 'reader'])) {
    const password = pgPassword(config, role, { create: local });
    if (password === undefined) continue;
    const { user } = config.pg.roles[role];
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user]);
    if (exists.rowCount === 1) await setPassword(client, user, password);
  }
}
