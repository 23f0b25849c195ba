// Migrations in a scratch database of their own: idempotent, reversible,
// and the roles they create can do what their component needs and no more.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, config } from '#lib/config.mjs';
import { pgPassword } from '#lib/credentials.mjs';
import { connectApi } from '#lib/connect.mjs';
import { pgClient, roleLogin } from '#lib/pg.mjs';
import { migrate } from '../../ops/migrate.mjs';
import { cli, NO_DIFFERENCE, summariesDifferFromRecompute, uniqueName } from './helpers.js';

const database = uniqueName('migrations_test').replace(/-/g, '_');
const MIGRATIONS = fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).length;
const admin = pgClient(config, 'postgres');

beforeAll(async () => {
  await admin.connect();
  await admin.query(`create database ${database}`);
});

afterAll(async () => {
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
});

async function inDb<T>(who: 'admin' | 'sink' | 'etl' | 'reader', work: (db: ReturnType<typeof pgClient>) => Promise<T>) {
  const creds = who === 'admin' ? {} : roleLogin(config, who);
  const db = pgClient(config, database, creds);
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

const catalog = () =>
  inDb(
    'admin',
    async (db) =>
      (
        await db.query(`
  select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in ('public', 'etl') and c.relkind in ('r', 'v', 'i') order by 1`)
      ).rows,
  );

describe('migrations', () => {
  it('apply, then change nothing when applied again', async () => {
    const first = await migrate(config, { database });
    expect(first).toHaveLength(MIGRATIONS);
    const objects = await catalog();
    expect(objects.map((o) => o.relname)).toEqual(
      expect.arrayContaining([
        'synthetic_data',
        'stock_price_summary',
        'sales_trend_summary',
        'synthetic_data_timestamp_idx',
        'stock_price_rollup',
        'stock_price_buckets',
        'samples_10m',
        'touched_buckets',
      ]),
    );
    expect(await migrate(config, { database })).toEqual([]);
    expect(await catalog()).toEqual(objects);
  });

  it('go down and up again', async () => {
    const down = await migrate(config, { database, direction: 'down', count: MIGRATIONS });
    expect(down).toHaveLength(MIGRATIONS);
    expect((await catalog()).filter((o) => !o.relname.startsWith('pgmigrations'))).toEqual([]);
    expect(await migrate(config, { database })).toHaveLength(MIGRATIONS);
  });

  it('keep the original demo inspection queries working', async () => {
    await inDb('reader', async (db) => {
      for (const table of ['synthetic_data', 'stock_price_summary', 'sales_trend_summary']) {
        await expect(db.query(`SELECT * FROM ${table};`)).resolves.toBeDefined();
      }
    });
  });
});

describe('roles', () => {
  const row = "(1, '2024-01-01 00:00+00', 100, 200)";

  it('the sink upserts synthetic_data and can touch nothing else', async () => {
    await inDb('sink', async (db) => {
      await db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values ${row}
                      on conflict (id) do update set stock_price = excluded.stock_price`);
      await db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values ${row}
                      on conflict (id) do update set stock_price = excluded.stock_price`);
      await expect(db.query('delete from synthetic_data')).rejects.toThrow(/permission denied/);
      await expect(db.query('select * from stock_price_summary')).rejects.toThrow(/permission denied/);
      await expect(db.query('select * from etl.touched_buckets')).rejects.toThrow(/permission denied/);
      await expect(db.query('create table mine (a int)')).rejects.toThrow(/permission denied/);
    });
  });

  it('the ETL refreshes summaries but cannot change the raw rows', async () => {
    await inDb('etl', async (db) => {
      const { rows } = await db.query('call etl.refresh_summaries()');
      expect(rows[0]).toEqual({ stock_buckets: 1, sales_buckets: 1 });
      await expect(db.query('update synthetic_data set stock_price = 0')).rejects.toThrow(/permission denied/);
      await expect(
        db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values (2, now(), 1, 1)`),
      ).rejects.toThrow(/permission denied/);
    });
  });

  it('the reporting role reads everything and writes nothing', async () => {
    await inDb('reader', async (db) => {
      expect((await db.query('select count(*)::int as n from stock_price_summary')).rows[0].n).toBe(1);
      await expect(db.query('delete from stock_price_summary')).rejects.toThrow(/cannot delete from view/);
      await expect(db.query('delete from etl.stock_price_buckets')).rejects.toThrow(/permission denied/);
      await expect(db.query('update synthetic_data set stock_price = 0')).rejects.toThrow(/permission denied/);
      await expect(db.query('call etl.refresh_summaries()')).rejects.toThrow(/permission denied/);
    });
  });
});

describe('the ETL', () => {
  it('forgets every bucket when the raw table is truncated', async () => {
    await inDb('admin', async (db) => {
      await db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend)
                      select g, timestamptz '2024-03-01 00:00+00' + g * interval '1 minute', g, g from generate_series(1, 120) g
                      on conflict (id) do nothing`);
    });
    const counts = () =>
      inDb(
        'reader',
        async (db) =>
          (
            await db.query(`select (select count(*) from stock_price_summary)::int as stock,
                                                         (select count(*) from sales_trend_summary)::int as sales`)
          ).rows[0],
      );
    await inDb('etl', (db) => db.query('call etl.refresh_summaries()'));
    expect((await counts()).stock).toBeGreaterThanOrEqual(12);
    await inDb('admin', (db) => db.query('truncate synthetic_data'));
    // At once, before any refresh: the truncate marked every stored bucket.
    expect(await counts()).toEqual({ stock: 0, sales: 0 });
    await inDb('etl', (db) => db.query('call etl.refresh_summaries()'));
    expect(await counts()).toEqual({ stock: 0, sales: 0 });
    expect(await storedCounts()).toEqual({ stock: 0, sales: 0 });
  });

  it('shows rows in the summaries the moment they land, before any refresh, as a full recompute would', async () => {
    await inDb('admin', (db) => db.query('truncate synthetic_data'));
    await inDb('etl', (db) => db.query('call etl.refresh_summaries()'));
    // Two hours of rows, refreshed and stored.
    await inDb('sink', (db) =>
      db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend)
                select g, timestamptz '2024-04-01 00:00+00' + g * interval '1 minute', 100 + g, 200 + g from generate_series(1, 119) g`),
    );
    await inDb('etl', (db) => db.query('call etl.refresh_summaries()'));
    expect(await storedCounts()).toEqual({ stock: 12, sales: 6 });
    expect(await pending()).toBe(0);

    // Then, with no refresh: a new bucket, a late row whose timestamp, a
    // millisecond before the first row's, makes it the first of a stored
    // bucket, a changed value,
    // and a bucket whose every row goes.
    await inDb('sink', async (db) => {
      await db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend)
                      values (500, '2024-04-01 05:00:00+00', 1, 2), (501, '2024-04-01 00:00:59.999+00', 3, 4)`);
      await db.query('update synthetic_data set stock_price = 7 where id = 45');
    });
    await inDb('admin', (db) => db.query('delete from synthetic_data where id between 100 and 109'));
    expect(await pending()).toBeGreaterThan(0);

    const bucket = (table: string, start: string) =>
      inDb('reader', async (db) => (await db.query(`select * from ${table} where interval_start = $1`, [start])).rows[0]);
    expect(await bucket('stock_price_summary', '2024-04-01 05:00+00')).toMatchObject({
      sample_count: 1,
      first_stock_price: 1,
      avg_stock_price: 1,
    });
    expect(await bucket('stock_price_summary', '2024-04-01 00:00+00')).toMatchObject({
      sample_count: 10,
      first_stock_price: 3,
      last_stock_price: 109,
    });
    expect(await bucket('stock_price_summary', '2024-04-01 00:40+00')).toMatchObject({ max_stock_price: 149, min_stock_price: 7 });
    expect(await bucket('stock_price_summary', '2024-04-01 01:40+00')).toBeUndefined();
    expect(await bucket('sales_trend_summary', '2024-04-01 05:00+00')).toMatchObject({ sample_count: 1, last_sales_trend: 2 });
    expect(await bucket('sales_trend_summary', '2024-04-01 00:00+00')).toMatchObject({
      sample_count: 20,
      first_sales_trend: 4,
      last_sales_trend: 219,
    });
    // The 01:40-02:00 bucket lost its first half: only 110..119 are left.
    expect(await bucket('sales_trend_summary', '2024-04-01 01:40+00')).toMatchObject({ sample_count: 10, first_sales_trend: 310 });
    // The stored buckets are still the old ones: the views computed the new.
    expect(await storedCounts()).toEqual({ stock: 12, sales: 6 });
    expect(await inDb('etl', (db) => summariesDifferFromRecompute(db, { exact: true }))).toEqual(NO_DIFFERENCE);

    // The refresh stores what the views showed, to the bit.
    const before = await inDb('reader', async (db) => ({
      stock: (await db.query(`select ${STOCK_COLS} from stock_price_summary order by 1`)).rows,
      sales: (await db.query(`select ${SALES_COLS} from sales_trend_summary order by 1`)).rows,
    }));
    const { rows } = await inDb('etl', (db) => db.query('call etl.refresh_summaries()'));
    expect(rows[0]).toEqual({ stock_buckets: 3, sales_buckets: 4 });
    expect(await pending()).toBe(0);
    expect(await storedCounts()).toEqual({ stock: 12, sales: 7 });
    expect(
      await inDb('reader', async (db) => ({
        stock: (await db.query(`select ${STOCK_COLS} from stock_price_summary order by 1`)).rows,
        sales: (await db.query(`select ${SALES_COLS} from sales_trend_summary order by 1`)).rows,
      })),
    ).toEqual(before);
    expect(await inDb('etl', (db) => summariesDifferFromRecompute(db, { exact: true }))).toEqual(NO_DIFFERENCE);
  });

  it('rebuilds in full writing only the buckets that changed, and drops those with no rows left', async () => {
    await inDb('etl', (db) => db.query('call etl.refresh_summaries(true)'));
    expect((await inDb('etl', (db) => db.query('call etl.refresh_summaries(true)'))).rows[0]).toEqual({
      stock_buckets: 0,
      sales_buckets: 0,
    });
    // Behind the trigger's back (as a superuser may): the full rebuild still finds it.
    await inDb('admin', async (db) => {
      await db.query('alter table synthetic_data disable trigger user');
      await db.query('update synthetic_data set sales_trend = 0 where id = 1');
      await db.query('delete from synthetic_data where id = 500');
      await db.query('alter table synthetic_data enable trigger user');
    });
    expect((await inDb('etl', (db) => db.query('call etl.refresh_summaries(true)'))).rows[0]).toEqual({
      stock_buckets: 0,
      sales_buckets: 1,
    });
    expect(await storedCounts()).toEqual({ stock: 11, sales: 6 });
    expect(await inDb('etl', (db) => summariesDifferFromRecompute(db, { exact: true }))).toEqual(NO_DIFFERENCE);
  });
});

describe('the sink connector', () => {
  it('is applied idempotently and shows no password, in its file or over REST', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await cli('connectors.mjs', [], {}, 120_000);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/synthetic-data-sink: RUNNING \(connector RUNNING, tasks( \d:RUNNING)+\)/);
    }
    const text = JSON.stringify((await connectApi(config, 'GET', '/connectors/synthetic-data-sink')).json);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Connect's placeholder, stored as written
    expect(JSON.parse(text).config['connection.password']).toBe('${env:PG_SINK_PASSWORD}');
    expect(text).not.toContain(pgPassword(config, 'sink'));
  });
});

const STOCK_COLS =
  'interval_start, interval_end, avg_stock_price, min_stock_price, max_stock_price, first_stock_price, last_stock_price, sample_count';
const SALES_COLS =
  'interval_start, interval_end, avg_sales_trend, min_sales_trend, max_sales_trend, first_sales_trend, last_sales_trend, sample_count';

/** Buckets the last refresh stored (what the views show once nothing is pending). */
const storedCounts = () =>
  inDb(
    'admin',
    async (db) =>
      (
        await db.query(`select (select count(*) from etl.stock_price_buckets)::int as stock,
                               (select count(*) from etl.sales_trend_buckets)::int as sales`)
      ).rows[0],
  );

/** Touched buckets waiting for the next refresh. */
const pending = () => inDb('admin', async (db) => (await db.query('select count(*)::int as n from etl.touched_buckets')).rows[0].n);

describe('the newest version of a row', () => {
  /** The sink's upsert (Debezium's INSERT ... ON CONFLICT (id) DO UPDATE), as the sink's role. */
  const upsert = (id: number, price: number, kafkaTimestamp: string | null, at = '2024-05-01 00:00+00') =>
    inDb('sink', (db) =>
      db.query(
        `insert into synthetic_data (id, "timestamp", stock_price, sales_trend, kafka_timestamp) values ($1, $2, $3, 1, $4)
         on conflict (id) do update set "timestamp" = excluded."timestamp", stock_price = excluded.stock_price,
           sales_trend = excluded.sales_trend, kafka_timestamp = excluded.kafka_timestamp`,
        [id, at, price, kafkaTimestamp],
      ),
    );
  const row = (id: number) =>
    inDb(
      'admin',
      async (db) =>
        (
          await db.query(
            `select stock_price, (extract(epoch from "timestamp") * 1000)::bigint::text as at_ms,
                    (extract(epoch from kafka_timestamp) * 1000)::bigint::text as kafka_ms, ingested_at
             from synthetic_data where id = $1`,
            [id],
          )
        ).rows[0],
    );
  const refreshed = async () => {
    await inDb('etl', (db) => db.query('call etl.refresh_summaries()'));
    expect(await pending()).toBe(0);
  };

  it('wins: an update with an older kafka_timestamp is skipped and touches no bucket, an equal or newer one applies', async () => {
    const id = 9001;
    await upsert(id, 1, '2026-01-01 00:00:10+00');
    await refreshed();
    const landed = await row(id);

    // An older version arriving later (a dead letter replayed after a
    // correction), even one that would move the row to another bucket.
    const result = await upsert(id, 2, '2026-01-01 00:00:09.999+00', '2024-05-02 00:00+00');
    expect(result.rowCount).toBe(0);
    expect(await row(id)).toEqual(landed);
    expect(await pending()).toBe(0);

    // The same timestamp: the later arrival wins, as before.
    await upsert(id, 3, '2026-01-01 00:00:10+00');
    expect((await row(id)).stock_price).toBe(3);
    expect(await pending()).toBeGreaterThan(0);
    await refreshed();

    await upsert(id, 4, '2026-01-01 00:00:11+00');
    expect(await row(id)).toMatchObject({ stock_price: 4, kafka_ms: String(Date.UTC(2026, 0, 1, 0, 0, 11)) });
    expect((await row(id)).ingested_at.getTime()).toBeGreaterThan(landed.ingested_at.getTime());
    expect(await inDb('etl', (db) => summariesDifferFromRecompute(db, { exact: true }))).toEqual(NO_DIFFERENCE);
  });

  it('applies any update when either side has no kafka_timestamp (a row written by hand), and updates by hand', async () => {
    const id = 9002;
    await inDb('admin', (db) =>
      db.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values ($1, '2024-05-01 00:01+00', 1, 1)`, [id]),
    );
    await upsert(id, 2, '2000-01-01 00:00+00');
    expect((await row(id)).stock_price).toBe(2);
    await upsert(id, 3, null);
    expect((await row(id)).stock_price).toBe(3);
    await upsert(id, 4, '2000-01-01 00:00+00');
    expect((await row(id)).stock_price).toBe(4);
    // An update that leaves kafka_timestamp alone keeps the row's own: it applies.
    await inDb('admin', (db) => db.query('update synthetic_data set stock_price = 5 where id = $1', [id]));
    expect((await row(id)).stock_price).toBe(5);
    await refreshed();
  });
});
