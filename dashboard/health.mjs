// @ts-check
// The pipeline's health, as the dashboard shows it live: each fact read on
// its own, so a service that is down shows as down (with why) while the others
// still report. PostgreSQL through the dashboard's pool (the read-only role,
// its timeouts); Kafka as the dashboard's own user, which may only describe
// the pipeline's topics and groups; Connect as a REST client.
import { assessStatus, connectorStatus } from '#lib/connect.mjs';
import { consumerLag, withKafkaAdmin } from '#lib/kafka.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {{ query: (sql: string) => Promise<{ rows: any[] }> }} Queryable a pg.Pool or pg.Client */

/** @template T @param {() => Promise<T>} read @returns {Promise<{ ok: true, value: T } | { ok: false, error: string }>} */
async function fact(read) {
  try {
    return { ok: true, value: await read() };
  } catch (err) {
    return {
      ok: false,
      error: String(/** @type {Error} */ (err).message ?? err)
        .split('\n')[0]
        .slice(0, 200),
    };
  }
}

/** @param {Queryable} db */
async function postgresFacts(db) {
  const {
    rows: [r],
  } = await db.query(`
    select
      (select count(*) from synthetic_data)::bigint as rows,
      (select max(ingested_at) from synthetic_data) as last_ingested,
      (select max(refreshed_at) from stock_price_summary) as stock_refreshed,
      (select max(interval_end) from stock_price_summary) as stock_end,
      (select max("timestamp") from synthetic_data) as newest_raw,
      (select percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from ingested_at - kafka_timestamp) * 1000)
         from synthetic_data where ingested_at > now() - interval '1 minute' and kafka_timestamp is not null) as latency_ms`);
  return {
    rows: Number(r.rows),
    lastIngested: r.last_ingested,
    summaryRefreshed: r.stock_refreshed,
    summaryBehindMinutes: r.newest_raw && r.stock_end ? Math.max(0, (r.newest_raw - r.stock_end) / 60_000) : null,
    latencyMs: r.latency_ms ? { p50: r.latency_ms[0], p99: r.latency_ms[1] } : null,
  };
}

/** @param {Config} config */
function kafkaFacts(config) {
  return withKafkaAdmin(
    config,
    async (admin) => {
      const topics = await admin.listTopics();
      /** What `group` has still to read of `topic`, 0 for a topic not made yet. @param {string} topic @param {string} group */
      const unread = async (topic, group) => (topics.includes(topic) ? consumerLag(admin, topic, group) : 0);
      const { topic, dlqTopic, rejectedTopic, replayGroups } = config.pipeline;
      return {
        lag: topics.includes(topic) ? await consumerLag(admin, topic, config.sink.group) : null,
        dlq: await unread(dlqTopic, replayGroups.dlq),
        rejected: await unread(rejectedTopic, replayGroups.rejected),
      };
    },
    { who: 'dashboard' },
  );
}

/** @param {Config} config */
async function connectorFacts(config) {
  const { status, json } = await connectorStatus(config, config.sink.connector);
  if (status === 404) return { state: 'missing', tasks: [] };
  const verdict = assessStatus(json);
  return { state: verdict.state, tasks: (json.tasks ?? []).map((/** @type {any} */ t) => ({ id: t.id, state: t.state })) };
}

/**
 * One reading of every fact, with rows/s from the previous reading.
 * @param {Config} config @param {Queryable} db @param {{ at: number, rows: number } | null} previous
 */
export async function readHealth(config, db, previous) {
  const at = Date.now();
  const [tables, kafka, connector] = await Promise.all([
    fact(() => postgresFacts(db)),
    fact(() => kafkaFacts(config)),
    fact(() => connectorFacts(config)),
  ]);
  const rows = tables.ok ? tables.value.rows : null;
  const rate = rows !== null && previous && at > previous.at ? Math.max(0, ((rows - previous.rows) * 1000) / (at - previous.at)) : null;
  return { at: new Date(at).toISOString(), rowsPerSecond: rate, postgres: tables, kafka, connector };
}
