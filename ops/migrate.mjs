// @ts-check
// Migrations (node-pg-migrate over migrations/*.sql) and the roles' passwords.
import path from 'node:path';
import { runner } from 'node-pg-migrate';
import { setRolePasswords, withPg } from '#lib/pg.mjs';

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
