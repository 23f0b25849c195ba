#!/usr/bin/env node
// npm run -s psql [-- psql options]: psql into the pipeline's database as the
// admin (or `-- -U pipeline_reader`, any role), with the generated passwords
// through a PGPASSFILE: no password to type, none on the command line.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { config } from '#lib/config.mjs';
import { writeClientRecipes } from '#lib/credentials.mjs';
import { UserError, main } from '#lib/errors.mjs';

await main(async () => {
  const { pgpass } = writeClientRecipes(config);
  const bundled = path.join(config.pg.binDir, 'psql');
  const psql = fs.existsSync(bundled) ? bundled : 'psql';
  const { host, port, database, adminUser, sslmode } = config.pg;
  // libpq's variables, so any option the user passes still wins.
  const env = { ...process.env, PGHOST: host, PGPORT: String(port), PGDATABASE: database, PGUSER: adminUser, PGSSLMODE: sslmode };
  if (!process.env.PGPASSFILE) env.PGPASSFILE = pgpass;
  const child = spawn(psql, process.argv.slice(2), { stdio: 'inherit', env });
  // psql handles Ctrl-C itself (it cancels the query): we only wait for it.
  process.on('SIGINT', () => {});
  const code = await new Promise((resolve, reject) => {
    child.on('error', (err) =>
      reject(
        /** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT'
          ? new UserError('psql is not installed: run `apt-get install -y postgresql-client-15`, or `npm start`, which installs PostgreSQL')
          : err,
      ),
    );
    child.on('close', (c) => resolve(c ?? 1));
  });
  process.exitCode = /** @type {number} */ (code);
});
