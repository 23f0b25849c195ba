// @ts-check
// How scripts end on an error: one line the user can act on, never a stack
// trace for a failure we can name.
import { ConfigError } from './env.mjs';
import { FatalError } from './platform.mjs';

/** @param {unknown} err */
export function fail(err) {
  const e = /** @type {Error & { code?: string }} */ (err);
  if (e instanceof FatalError || e instanceof ConfigError) {
    console.error(`error: ${e.message}`);
  } else if (e?.code === 'ECONNREFUSED') {
    console.error(`error: a service is not reachable (${e.message}): start the platform with \`npm run platform:up\``);
  } else if (e?.code === '28P01') {
    console.error(`error: PostgreSQL refused the password (${e.message}): check the PG_*_PASSWORD keys in .env, then \`npm run db:migrate\``);
  } else if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    console.error(`error: PostgreSQL: ${e.message}`);
  } else {
    throw err;
  }
  process.exitCode = 1;
}
