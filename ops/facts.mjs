// @ts-check
// The pipeline seen from outside, as facts: rows and freshness of each table,
// the topic and the sink's lag. `npm start`, `npm run status`
// and the benchmarks read them; they judge.
import { consumerLag, topicSize } from '#lib/kafka.mjs';
import { withPg } from '#lib/pg.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/** Rows and the newest bucket of every table, as the read-only role. @param {Config} config */
export function tableFacts(config) {
  return withPg(config, 'reader', async (db) => {
    const { rows } = await db.query(`
      select
        (select count(*)::int from synthetic_data) as raw_rows,
        (select max("timestamp") from synthetic_data) as newest_raw,
        (select count(*)::int from stock_price_summary) as stock_rows,
        (select max(interval_start) from stock_price_summary) as newest_stock,
        (select max(interval_end) from stock_price_summary) as newest_stock_end,
        (select count(*)::int from sales_trend_summary) as sales_rows,
        (select max(interval_start) from sales_trend_summary) as newest_sales,
        (select max(interval_end) from sales_trend_summary) as newest_sales_end
    `);
    return rows[0];
  });
}

/**
 * How far the newest raw row lies past the end of a summary's newest bucket:
 * 'up to date' when that bucket covers it. Pure.
 * @param {Date | string | null} newestRaw @param {Date | string | null} newestBucketEnd
 */
export function behind(newestRaw, newestBucketEnd) {
  if (!newestRaw || !newestBucketEnd) return '-';
  const gap = new Date(newestRaw).getTime() - new Date(newestBucketEnd).getTime();
  return gap < 0 ? 'up to date' : `${Math.ceil(gap / 60_000)} min`;
}

/**
 * Messages in the pipeline's topic and the sink's lag (null when it cannot be
 * read). The quarantines' counts come from quarantine.mjs, with their reasons.
 * @param {import('kafkajs').Admin} admin @param {Config} config
 */
export async function kafkaFacts(admin, config) {
  const { topic } = config.pipeline;
  const [messages, lag] = await Promise.all([topicSize(admin, topic), consumerLag(admin, topic, config.sink.group).catch(() => null)]);
  return { messages, lag };
}
