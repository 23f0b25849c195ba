// @ts-check
// Shared by the benchmarks: put the pipeline back to empty, and time a load.
import fs from 'node:fs';
import path from 'node:path';
import { connectApi } from '#lib/connect.mjs';
import { consumerLag, kafkaAdmin, withKafkaAdmin } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { delay } from '#lib/procs.mjs';
import { applyConnectors } from '../ops/connectors.mjs';
import { runEtl } from '../ops/etl.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * Rows in synthetic_data now, -1 while PostgreSQL does not answer (a stack
 * starting, a container restarting): for loops that poll a load.
 * @param {Config} config
 */
export async function rowsLanded(config) {
  const db = pgClient(config);
  try {
    await db.connect();
    return Number((await db.query('select count(*)::int as n from synthetic_data')).rows[0].n);
  } catch {
    return -1;
  } finally {
    await db.end().catch(() => {});
  }
}

/**
 * Empties the pipeline: connector, topics, its consumer group, tables, the
 * producer's checkpoints. Then applies the connector again. Destructive: only
 * benchmarks call it, and they say so first.
 * @param {Config} config
 */
export async function resetPipeline(config) {
  await connectApi(config, 'DELETE', `/connectors/${config.sink.connector}`);
  for (let i = 0; i < 100; i++) {
    if ((await connectApi(config, 'GET', `/connectors/${config.sink.connector}`)).status === 404) break;
    await delay(100);
  }
  const admin = kafkaAdmin(config);
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    const topics = [config.pipeline.topic, config.pipeline.rejectedTopic, config.pipeline.dlqTopic].filter((t) => existing.includes(t));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 30_000 });
    await admin.deleteGroups([config.sink.group]).catch(() => {});
    // Topic deletion is asynchronous in Kafka: wait until it is really gone.
    for (let i = 0; i < 100 && (await admin.listTopics()).some((t) => topics.includes(t)); i++) await delay(100);
  } finally {
    await admin.disconnect();
  }
  const db = pgClient(config);
  await db.connect();
  try {
    await db.query('truncate synthetic_data, etl.stock_price_buckets, etl.sales_trend_buckets, etl.touched_buckets');
  } finally {
    await db.end();
  }
  fs.rmSync(path.join(config.runDir, 'producer'), { recursive: true, force: true });
  // Creates the topic again, with the configured partitions, before the sink subscribes.
  await applyConnectors(config, { log: () => {} });
}

/**
 * Waits until the sink has consumed the topic, then reads the load's times
 * from the table itself (ingested_at), so polling adds nothing to them. It
 * asks Kafka for the sink's lag and counts the table only once that is 0: a
 * count(*) of a growing table five times a second would be PostgreSQL CPU
 * charged to the load.
 * @param {Config} config @param {number} expectedRows
 */
export async function waitLoaded(config, expectedRows, timeoutMs = 300_000) {
  const db = pgClient(config);
  await db.connect();
  const admin = kafkaAdmin(config);
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    const count = async () =>
      (await db.query('select count(*)::int as n, min(ingested_at) as first, max(ingested_at) as last from synthetic_data')).rows[0];
    for (;;) {
      if ((await consumerLag(admin, config.pipeline.topic, config.sink.group).catch(() => 1)) === 0) {
        const r = await count();
        if (r.n >= expectedRows) return { rows: r.n, first: new Date(r.first).getTime(), last: new Date(r.last).getTime() };
      }
      if (Date.now() > deadline) throw new Error(`only ${(await count()).n} of ${expectedRows} rows landed in ${timeoutMs / 1000} s`);
      await delay(200);
    }
  } finally {
    await db.end();
    await admin.disconnect();
  }
}

/**
 * The value at fraction `p` of `xs` in order, by the nearest rank below it
 * (0.5 is the median, 1 the largest); null for no values. Pure.
 * @param {number[]} xs @param {number} p
 */
export function percentile(xs, p) {
  if (!xs.length) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * The ETL procedure's times on the loaded table: full rebuild, and incremental
 * runs after one minute and after one hour of new rows (a row a minute, as in
 * the dataset), median of `runs` each. The new rows are removed afterwards.
 * @param {Config} config @param {number} runs
 */
export async function etlTimes(config, runs) {
  const median = (/** @type {number[]} */ xs) => percentile(xs, 0.5);
  const admin = pgClient(config);
  await admin.connect();
  try {
    const {
      rows: [facts],
    } = await admin.query('select count(*)::int as n, max(id) as max_id, max("timestamp") as newest from synthetic_data');
    if (facts.n === 0) throw new Error('synthetic_data is empty: run `npm start` first');
    const full = [];
    for (let i = 0; i < runs; i++) full.push((await runEtl(config, { full: true })).ms);
    let nextId = Number(facts.max_id) + 1;
    let nextTs = new Date(facts.newest).getTime() + 60_000;
    /** @type {number[]} */
    const added = [];
    /** @param {number} minutes */
    const incremental = async (minutes) => {
      const times = [];
      for (let i = 0; i < runs; i++) {
        const params = [];
        const values = [];
        for (let m = 0; m < minutes; m++) {
          params.push(nextId, new Date(nextTs), 100 + m, 200 + m);
          const n = params.length;
          values.push(`($${n - 3}, $${n - 2}, $${n - 1}, $${n})`);
          added.push(nextId++);
          nextTs += 60_000;
        }
        await admin.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values ${values.join(',')}`, params);
        times.push((await runEtl(config)).ms);
      }
      return median(times);
    };
    const minuteMs = await incremental(1);
    const hourMs = await incremental(60);
    await admin.query('delete from synthetic_data where id = any($1::bigint[])', [added]);
    await runEtl(config);
    return { rows: facts.n, runs, fullMs: median(full), minuteMs, hourMs };
  } finally {
    await admin.end();
  }
}

/**
 * The environment of a second local platform beside the default one: its own
 * state folder and 12 ports from `base` (nodes on base/+1, +2/+3, +4/+5;
 * PostgreSQL +6; registry +7/+8; Connect workers +9, +10; dashboard +11),
 * downloads shared.
 * @param {{ stateDir: string, cacheDir: string, base: number, brokers: number, protocol: 'PLAINTEXT' | 'SASL_SSL' }} a
 * @returns {Record<string, string>}
 */
export function secondPlatformEnv({ stateDir, cacheDir, base, brokers, protocol }) {
  return {
    STATE_DIR: stateDir,
    CACHE_DIR: cacheDir,
    KAFKA_BROKERS: String(brokers),
    KAFKA_SECURITY_PROTOCOL: protocol,
    KAFKA_PORT: String(base),
    KAFKA_CONTROLLER_PORT: String(base + 1),
    PG_PORT: String(base + 6),
    REGISTRY_PORT: String(base + 7),
    REGISTRY_MANAGEMENT_PORT: String(base + 8),
    CONNECT_PORT: String(base + 9),
    DASHBOARD_PORT: String(base + 11),
  };
}

/**
 * What a user of that platform sets to reach it as a cluster of theirs:
 * PLATFORM=external, its endpoints, the credentials it generated.
 * @param {Config} platform @param {string} userState
 * @returns {Record<string, string>}
 */
export function externalEnv(platform, userState) {
  const secret = (/** @type {string} */ name) =>
    fs.readFileSync(path.join(platform.stateDir, 'credentials', `${name}.password`), 'utf8').trim();
  const secure = platform.kafka.security.protocol === 'SASL_SSL';
  return {
    STATE_DIR: userState,
    PLATFORM: 'external',
    KAFKA_BOOTSTRAP_SERVERS: platform.kafka.bootstrap,
    KAFKA_SECURITY_PROTOCOL: platform.kafka.security.protocol,
    SCHEMA_REGISTRY_URL: platform.registry.ccompatUrl,
    CONNECT_URL: platform.connect.url,
    // Connect's REST API asks for credentials in every shape.
    CONNECT_USERNAME: 'admin',
    CONNECT_PASSWORD: secret('connect-admin'),
    PG_PORT: String(platform.pg.port),
    // The admin for migrations, the ETL and reader roles for etl and status;
    // the sink's is left to the platform's own workers.
    PG_ADMIN_PASSWORD: secret('pg-admin'),
    PG_ETL_PASSWORD: secret('pg-etl'),
    PG_READER_PASSWORD: secret('pg-reader'),
    ...(secure
      ? {
          KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
          KAFKA_SASL_USERNAME: 'admin',
          KAFKA_SASL_PASSWORD: secret('kafka-admin'),
          KAFKA_PRODUCER_SASL_USERNAME: 'producer',
          KAFKA_PRODUCER_SASL_PASSWORD: secret('kafka-producer'),
          KAFKA_SSL_CA_FILE: path.join(platform.stateDir, 'tls', 'ca.pem'),
        }
      : {}),
  };
}

/**
 * Whether every partition of the pipeline's topic has all `replicas` in sync;
 * false while the cluster does not answer.
 * @param {Config} config @param {number} replicas
 */
export function allInSync(config, replicas) {
  return withKafkaAdmin(config, async (admin) => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [config.pipeline.topic] });
    return topics[0].partitions.every((p) => p.isr.length === replicas);
  }).catch(() => false);
}

/** Resident memory of processes, MB. @param {number[]} pids */
export function rssMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return Math.round(kb / 1024);
}
