// @ts-check
// The pipeline's moving parts seen from outside: row counts, the sink's lag,
// the ETL, dead letters. Shared by `npm start`, `npm run status`, `npm run etl`.
import kafkajs from 'kafkajs';
import { pgClient } from './platform.mjs';

/** @typedef {import('./env.mjs').Config} Config */

export const SINK_CONNECTOR = 'synthetic-data-sink';
export const DLQ_TOPIC = 'synthetic_data.dlq';

/** A client as one of the component roles. @param {Config} config @param {'sink' | 'etl' | 'reader'} role */
export function roleClient(config, role) {
  const { user, password } = config.pg.roles[role];
  return pgClient(config, config.pg.database, { user, password });
}

/**
 * Runs the ETL as its own role. Returns buckets written and milliseconds.
 * @param {Config} config @param {{ full?: boolean }} [opts]
 */
export async function runEtl(config, { full = false } = {}) {
  const db = roleClient(config, 'etl');
  await db.connect();
  try {
    const started = performance.now();
    const { rows } = await db.query('CALL etl.refresh_summaries($1)', [full]);
    return { stockBuckets: rows[0].stock_buckets, salesBuckets: rows[0].sales_buckets, ms: performance.now() - started };
  } finally {
    await db.end();
  }
}

/** @param {Config} config */
export function kafkaAdmin(config) {
  return new kafkajs.Kafka({ clientId: 'kafka-pg-pipeline-scripts', brokers: [config.kafka.bootstrap], logLevel: kafkajs.logLevel.NOTHING }).admin();
}

/**
 * Messages in a topic (sum of end offsets), 0 if it does not exist.
 * @param {kafkajs.Admin} admin @param {string} topic
 */
export async function topicSize(admin, topic) {
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } catch {
    return 0;
  }
}

/**
 * The sink's consumer lag: end offsets minus the group's committed offsets.
 * @param {kafkajs.Admin} admin @param {string} topic @param {string} groupId
 */
export async function consumerLag(admin, topic, groupId) {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  return ends.reduce((lag, p) => {
    const at = done.get(p.partition) ?? -1;
    return lag + Number(p.high) - (at < 0 ? Number(p.low) : at);
  }, 0);
}

/** @param {Config} config */
export async function tableFacts(config) {
  const db = roleClient(config, 'reader');
  await db.connect();
  try {
    const { rows } = await db.query(`
      select
        (select count(*)::int from synthetic_data) as raw_rows,
        (select max("timestamp") from synthetic_data) as newest_raw,
        (select count(*)::int from stock_price_summary) as stock_rows,
        (select max(interval_start) from stock_price_summary) as newest_stock,
        (select count(*)::int from sales_trend_summary) as sales_rows,
        (select max(interval_start) from sales_trend_summary) as newest_sales
    `);
    return rows[0];
  } finally {
    await db.end();
  }
}
