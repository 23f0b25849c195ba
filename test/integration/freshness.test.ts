// Summaries follow the raw rows within seconds with nobody calling the ETL:
// pg_cron's minute job refreshes once a second for most of its minute
// (migration 20261130000100). How fresh, as a distribution, is `npm run
// bench`'s to measure; this checks that it happens, to rows added and removed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { pgClient } from '#lib/pg.mjs';
import { migrate } from '../../ops/migrate.mjs';
import { up } from '../../platform/lifecycle.mjs';
import { until } from './helpers.js';

const db = pgClient(config);
// Far from the dataset's year, so no other row shares the buckets.
const IDS = [2_000_000_001, 2_000_000_002];
const BUCKET = '2031-03-03T03:00:00.000Z';

const buckets = async () => {
  const { rows } = await db.query(
    `select
       (select row_to_json(s) from (select avg_stock_price, sample_count, first_stock_price, last_stock_price from stock_price_summary where interval_start = $1) s) as stock,
       (select row_to_json(s) from (select avg_sales_trend, sample_count from sales_trend_summary where interval_start = $1) s) as sales`,
    [BUCKET],
  );
  return rows[0] as { stock: Record<string, number> | null; sales: Record<string, number> | null };
};

beforeAll(async () => {
  await up(config, { log: () => {} });
  await migrate(config);
  await db.connect();
  await db.query('delete from synthetic_data where id = any($1)', [IDS]);
});

afterAll(async () => {
  await db.query('delete from synthetic_data where id = any($1)', [IDS]).catch(() => {});
  await db.end();
});

describe('the summaries without anyone calling the ETL', () => {
  it('is what pg_cron runs, as the ETL role', async () => {
    const { rows } = await db.query("select command, username from cron.job where jobname = 'refresh-summaries'");
    expect(rows).toEqual([{ command: 'CALL etl.refresh_summaries_for(58)', username: 'pipeline_etl' }]);
  });

  it('show rows as they land, and drop buckets whose rows are gone', async () => {
    const t0 = Date.now();
    await db.query(
      `insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values
         ($1, '2031-03-03 03:01:00+00', 10, 100), ($2, '2031-03-03 03:02:00+00', 15, 300)`,
      IDS,
    );
    // Within the job's minute: a refresh a second; between two minutes' jobs, a gap of about two.
    const found = await until(
      async () => {
        const b = await buckets();
        return b.stock?.sample_count === 2 && b.sales?.sample_count === 2 ? b : undefined;
      },
      70_000,
      'both buckets refreshed by the job',
    );
    console.log(`summaries showed the new rows ${((Date.now() - t0) / 1000).toFixed(1)} s after their commit`);
    expect(found).toEqual({
      stock: { avg_stock_price: 12.5, sample_count: 2, first_stock_price: 10, last_stock_price: 15 },
      sales: { avg_sales_trend: 200, sample_count: 2 },
    });

    await db.query('delete from synthetic_data where id = any($1)', [IDS]);
    await until(
      async () => {
        const b = await buckets();
        return b.stock === null && b.sales === null;
      },
      70_000,
      'both buckets gone',
    );
  }, 180_000);
});
