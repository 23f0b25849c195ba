// @ts-check
// The ETL on demand (pg_cron runs the same procedure every minute).
import { withPg } from '#lib/pg.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * Runs the ETL as its own role. Returns buckets written and milliseconds.
 * @param {Config} config @param {{ full?: boolean }} [opts]
 */
export function runEtl(config, { full = false } = {}) {
  return withPg(config, 'etl', async (db) => {
    const started = performance.now();
    const { rows } = await db.query('CALL etl.refresh_summaries($1)', [full]);
    return { stockBuckets: rows[0].stock_buckets, salesBuckets: rows[0].sales_buckets, ms: performance.now() - started };
  });
}
