// @ts-check
// What the dashboard reads, as the read-only role: candles and the sales band
// over a time range, merged into wider buckets when the range is wide (whole
// summary buckets each, so every bar is exact for its span). Parameterised
// SQL only; parameters were checked by params.mjs.
import { bucketMinutes, SALES_MINUTES, STOCK_MINUTES } from './params.mjs';

/** @typedef {{ query: (sql: string, values?: unknown[]) => Promise<{ rows: any[] }> }} Db */

/**
 * @param {Db} db @param {string} table @param {Date | null} from @param {Date | null} to
 * @returns {Promise<{ from: Date, to: Date } | null>} the range asked, or the table's whole span
 */
async function span(db, table, from, to) {
  if (from && to) return { from, to };
  const {
    rows: [r],
  } = await db.query(`select min(interval_start) as lo, max(interval_end) as hi from ${table}`);
  if (!r.lo) return null;
  return { from: from ?? r.lo, to: to ?? r.hi };
}

/**
 * 10-minute OHLC candles (first / max / min / last) of stock_price_summary,
 * as the chart wants them: time in seconds since 1970.
 * @param {Db} db @param {{ from: Date | null, to: Date | null, maxBars: number }} range
 */
export async function candles(db, { from, to, maxBars }) {
  const s = await span(db, 'stock_price_summary', from, to);
  if (!s) return { minutes: STOCK_MINUTES, bars: [] };
  const minutes = bucketMinutes(s.to.getTime() - s.from.getTime(), maxBars, STOCK_MINUTES);
  const { rows } = await db.query(
    `select extract(epoch from date_bin($3::interval, interval_start, timestamptz '2000-01-01 00:00:00+00'))::bigint as time,
       (array_agg(first_stock_price order by interval_start))[1] as open,
       max(max_stock_price) as high,
       min(min_stock_price) as low,
       (array_agg(last_stock_price order by interval_start desc))[1] as close
     from stock_price_summary
     where interval_start >= $1 and interval_start < $2
     group by 1 order by 1`,
    [s.from, s.to, `${minutes} minutes`],
  );
  return { minutes, bars: rows.map((r) => ({ time: Number(r.time), open: r.open, high: r.high, low: r.low, close: r.close })) };
}

/**
 * The 20-minute sales trend: the average (weighted by samples) with its
 * min-max band, as columns (what uPlot draws).
 * @param {Db} db @param {{ from: Date | null, to: Date | null, maxBars: number }} range
 */
export async function salesBand(db, { from, to, maxBars }) {
  const s = await span(db, 'sales_trend_summary', from, to);
  if (!s) return { minutes: SALES_MINUTES, time: [], avg: [], min: [], max: [] };
  const minutes = bucketMinutes(s.to.getTime() - s.from.getTime(), maxBars, SALES_MINUTES);
  const { rows } = await db.query(
    `select extract(epoch from date_bin($3::interval, interval_start, timestamptz '2000-01-01 00:00:00+00'))::bigint as time,
       sum(avg_sales_trend * sample_count) / sum(sample_count) as avg,
       min(min_sales_trend) as min,
       max(max_sales_trend) as max
     from sales_trend_summary
     where interval_start >= $1 and interval_start < $2
     group by 1 order by 1`,
    [s.from, s.to, `${minutes} minutes`],
  );
  return {
    minutes,
    time: rows.map((r) => Number(r.time)),
    avg: rows.map((r) => r.avg),
    min: rows.map((r) => r.min),
    max: rows.map((r) => r.max),
  };
}
