// @ts-check
// A record PostgreSQL refuses (a constraint, a value out of range) fails the
// Debezium sink's task on every retry: Debezium 3.6 has no errant-record
// reporter for database errors, so its partition would wait for good. The
// watchdog isolates such a record instead: with batch.size=1 the task fails
// on that record alone, and the failing statement names its values; the
// record is found in Kafka, copied to the dead letter queue with PostgreSQL's
// reason (where `npm run status` shows it and `npm run dlq:replay` finds it),
// and the sink's offset moved one past it.
//
// Only when PostgreSQL takes the sink's writes otherwise: a probe upserts the
// newest landed row again as the sink's role, and rolls back. A database that
// refuses everything (permissions, a read-only server, a constraint no row
// meets) is an outage to fix, not a record to divert.
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { connectApi, connectorStatus, failedParts, restartFailed } from '#lib/connect.mjs';
import { registryAuth } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';
import {
  consumerLag,
  createKafka,
  ensureTopic,
  groupRange,
  kafkaClient,
  readRange,
  topicReplication,
  withKafkaAdmin,
} from '#lib/kafka.mjs';
import { withPg } from '#lib/pg.mjs';
import { delay } from '#lib/procs.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * The refusal PostgreSQL itself reported in a task's trace ("ERROR: ..."),
 * or null for anything else (a lost connection, a converter). Pure.
 * @param {string} trace
 */
export function refusal(trace) {
  const m = /PSQLException: (ERROR: [^\n]*)/.exec(trace);
  return m ? m[1].trim().slice(0, 300) : null;
}

/**
 * The root cause of a task's failure: its last "Caused by" line, without
 * package names. Pure.
 * @param {string} trace
 */
export function rootCause(trace) {
  const lines = String(trace ?? '').split('\n');
  const caused = lines.filter((l) => l.startsWith('Caused by: ')).at(-1);
  const line = (caused ?? lines[0] ?? '').replace(/^Caused by: /, '').trim();
  return (line.replace(/^(?:[a-z]\w*\.)+(?=[A-Z])/, '') || 'no trace').slice(0, 300);
}

/**
 * Reads one SQL literal list "(('1'::int8),(NULL),...)" from `text` at `at`.
 * @param {string} text @param {number} at @returns {{ values: (string | null)[], end: number } | null}
 */
function readTuple(text, at) {
  if (text[at] !== '(') return null;
  /** @type {(string | null)[]} */
  const values = [];
  let i = at + 1;
  for (;;) {
    if (text[i] !== '(') return null;
    i++;
    if (text.startsWith('NULL)', i)) {
      values.push(null);
      i += 5;
    } else if (text[i] === "'") {
      let value = '';
      for (i++; ; i++) {
        if (i >= text.length) return null;
        if (text[i] === "'" && text[i + 1] === "'") {
          value += "'";
          i++;
        } else if (text[i] === "'") break;
        else value += text[i];
      }
      const close = text.indexOf(')', i);
      if (close < 0) return null;
      values.push(value);
      i = close + 1;
    } else {
      const close = text.indexOf(')', i);
      if (close < 0) return null;
      values.push(text.slice(i, close));
      i = close + 1;
    }
    if (text[i] === ',') i++;
    else if (text[i] === ')') return { values, end: i + 1 };
    else return null;
  }
}

/**
 * The row of a failing single-row INSERT named in a task's trace, as column
 * -> literal text; null when the statement held several rows (the batch is
 * not isolated yet) or none is named. Pure.
 * @param {string} trace @returns {Record<string, string | null> | null}
 */
export function refusedRow(trace) {
  const m = /Batch entry \d+ INSERT INTO \S+ \(([^)]*)\) VALUES /.exec(trace);
  if (!m) return null;
  const columns = m[1].split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  const tuple = readTuple(trace, m.index + m[0].length);
  // A second row after the first: several records in one statement.
  if (!tuple || trace[tuple.end] === ',' || tuple.values.length !== columns.length) return null;
  return Object.fromEntries(columns.map((c, i) => [c, tuple.values[i]]));
}

/**
 * What identifies the refused record in Kafka: its id, and the record's
 * timestamp when the row carries it (kafka_timestamp, set by the sink's
 * InsertField transform, rendered in UTC). Pure.
 * @param {Record<string, string | null>} row
 */
export function recordKey(row) {
  const id = row.id === null || row.id === undefined ? null : row.id;
  const ts = row.kafka_timestamp ? Date.parse(`${row.kafka_timestamp.replace(' ', 'T')}Z`) : Number.NaN;
  return { id, timestampMs: Number.isFinite(ts) ? ts : null };
}

/**
 * Whether PostgreSQL takes the sink's writes at all: the newest landed row
 * upserted again as the sink's role, rolled back. Null when it does, else why not.
 * @param {Config} config
 */
export async function sinkWriteProblem(config) {
  try {
    await withPg(config, 'sink', async (db) => {
      await db.query('begin');
      try {
        await db.query(`
          insert into synthetic_data (id, "timestamp", stock_price, sales_trend, kafka_timestamp)
          select id, "timestamp", stock_price, sales_trend, kafka_timestamp
          from synthetic_data order by ingested_at desc limit 1
          on conflict (id) do update set "timestamp" = excluded."timestamp", stock_price = excluded.stock_price,
            sales_trend = excluded.sales_trend, kafka_timestamp = excluded.kafka_timestamp`);
      } finally {
        await db.query('rollback');
      }
    });
    return null;
  } catch (err) {
    return /** @type {Error} */ (err).message;
  }
}

/** @param {string} name @param {string} [suffix] */
const route = (name, suffix = '') => `/connectors/${encodeURIComponent(name)}${suffix}`;

/** @param {Config} config @param {string} method @param {string} path @param {unknown} body @param {number[]} ok */
async function call(config, method, path, body, ok) {
  const res = await connectApi(config, method, path, body);
  if (!ok.includes(res.status)) throw new UserError(`Connect answered ${res.status} to ${method} ${path}: ${res.json?.message ?? ''}`);
  return res.json;
}

/**
 * Gives a connector back its own batch.size and runs it again (stopped while
 * its refused record was moved, or left so by a watchdog that died midway).
 * @param {Config} config @param {string} name @param {string | null} batchSize null: none set
 */
export async function restoreBatchSize(config, name, batchSize) {
  const now = await call(config, 'GET', route(name, '/config'), undefined, [200]);
  const back = { ...now };
  if (batchSize === null) delete back['batch.size'];
  else back['batch.size'] = batchSize;
  if (now['batch.size'] !== back['batch.size']) await call(config, 'PUT', route(name, '/config'), back, [200, 201]);
  const { json } = await connectorStatus(config, name);
  if (json?.connector?.state === 'STOPPED') await call(config, 'PUT', route(name, '/resume'), undefined, [202, 204]);
}

/**
 * @param {Config} config @param {string} name @param {(json: any) => boolean} done @param {number} timeoutMs @param {string} what
 */
async function waitStatus(config, name, done, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, json } = await connectorStatus(config, name);
    if (status === 200 && done(json)) return json;
    if (Date.now() > deadline) throw new UserError(`${name} did not ${what} within ${timeoutMs / 1000} s`);
    await delay(500);
  }
}

/**
 * Finds the record the refused row came from among the sink's unread records.
 * @param {Config} config @param {import('kafkajs').Admin} admin
 * @param {{ id: string | null, timestampMs: number | null }} key
 */
async function findRecord(config, admin, key) {
  const { topic } = config.pipeline;
  const ranges = (await groupRange(admin, topic, config.sink.group)).filter((r) => r.to > r.from);
  const registry = new SchemaRegistry({
    host: config.registry.ccompatUrl,
    ...(registryAuth(config) ? { auth: registryAuth(config) } : {}),
  });
  /** @type {{ partition: number, offset: number, message: import('kafkajs').KafkaMessage }[]} */
  const found = [];
  for (const range of ranges) {
    await readRange(kafkaClient(config), topic, [range], async (message, partition) => {
      if (key.timestampMs !== null && Number(message.timestamp) !== key.timestampMs) return;
      if (!message.value) return;
      /** @type {any} */
      let value;
      try {
        value = await registry.decode(message.value);
      } catch {
        return;
      }
      if (String(value?.id) !== key.id) return;
      found.push({ partition, offset: Number(message.offset), message });
      return false;
    });
    if (found.length > 0) return found[0];
  }
  return null;
}

/**
 * Isolates the record PostgreSQL refuses, dead-letters it with the reason and
 * moves the sink past it. Returns what it did, in one line; throws a UserError
 * when a step fails (the connector is then left as the config says, and the
 * watchdog goes on restarting it).
 * @param {Config} config @param {string} name
 * @param {{ log: (line: string) => void, remember: (batchSize: string | null | undefined) => void, batchSize?: string | null }} opts
 *   remember: keeps the connector's own batch.size (null: none set) while it runs with 1, so a watchdog that
 *   dies midway restores it (`restoreBatchSize`); undefined once restored. batchSize: one remembered earlier.
 */
export async function quarantineRefused(config, name, { log, remember, batchSize: kept }) {
  const problem = await sinkWriteProblem(config);
  if (problem)
    return { quarantined: false, line: `PostgreSQL refuses every write of the sink (${problem}), not one record: nothing quarantined` };

  const current = await call(config, 'GET', route(name, '/config'), undefined, [200]);
  const batchSize = kept !== undefined ? kept : (current['batch.size'] ?? null);
  const restore = async () => {
    await restoreBatchSize(config, name, batchSize);
    remember(undefined);
  };
  remember(batchSize);
  if (current['batch.size'] !== '1') {
    log(`${name}: PostgreSQL refuses a record; running with batch.size=1 to find it`);
    await call(config, 'PUT', route(name, '/config'), { ...current, 'batch.size': '1' }, [200, 201]);
  }
  try {
    // The task fails again on the refused record alone (or the cause went away).
    /** @type {Record<string, string | null> | null} */
    let row = null;
    let reason = '';
    const deadline = Date.now() + 180_000;
    let restartedAt = Date.now();
    while (!row) {
      if (Date.now() > deadline) throw new UserError(`${name}: the refused record was not isolated within 180 s`);
      const { json } = await connectorStatus(config, name);
      for (const part of failedParts(json)) {
        const trace = String(part.trace ?? '');
        const found = refusedRow(trace);
        if (found && refusal(trace)) {
          row = found;
          reason = /** @type {string} */ (refusal(trace));
          break;
        }
      }
      if (row) break;
      const running = json?.connector?.state === 'RUNNING' && json.tasks?.length > 0 && failedParts(json).length === 0;
      if (running && (await withKafkaAdmin(config, (a) => consumerLag(a, config.pipeline.topic, config.sink.group))) === 0) {
        await restore();
        return { quarantined: false, line: 'the sink caught up with batch.size=1: no record is refused now' };
      }
      // A task that failed on a whole batch before the new config reached it.
      if (failedParts(json).length > 0 && Date.now() - restartedAt > 5000) {
        await restartFailed(config, name);
        restartedAt = Date.now();
      }
      await delay(1000);
    }

    await call(config, 'PUT', route(name, '/stop'), undefined, [202, 204]);
    await waitStatus(config, name, (s) => s.connector?.state === 'STOPPED', 60_000, 'stop');
    const key = recordKey(row);
    const summary = `id ${key.id ?? '?'}${key.timestampMs !== null ? `, sent ${new Date(key.timestampMs).toISOString()}` : ''}`;
    const done = await withKafkaAdmin(config, async (admin) => {
      const hit = await findRecord(config, admin, key);
      if (!hit) return null;
      await deadLetter(config, admin, { ...hit, connector: name, reason });
      await call(
        config,
        'PATCH',
        route(name, '/offsets'),
        {
          offsets: [
            { partition: { kafka_topic: config.pipeline.topic, kafka_partition: hit.partition }, offset: { kafka_offset: hit.offset + 1 } },
          ],
        },
        [200],
      );
      return hit;
    });
    await restore();
    if (!done) return { quarantined: false, line: `the refused record (${summary}) was not found among the sink's unread records` };
    return {
      quarantined: true,
      line: `moved the record PostgreSQL refuses (${summary}; partition ${done.partition}, offset ${done.offset}) to ${config.pipeline.dlqTopic}: ${reason}`,
      record: { partition: done.partition, offset: done.offset, id: key.id, reason },
    };
  } catch (err) {
    await restore().catch(() => {});
    throw err;
  }
}

/**
 * The record as Connect would dead-letter it: its key, value and headers,
 * plus the error context headers `npm run status` and `dlq:replay` read.
 * @param {Config} config @param {import('kafkajs').Admin} admin
 * @param {{ partition: number, offset: number, message: import('kafkajs').KafkaMessage, connector: string, reason: string }} r
 */
async function deadLetter(config, admin, { partition, offset, message, connector, reason }) {
  await ensureTopic(admin, config.pipeline.dlqTopic, 1, topicReplication(config));
  const producer = createKafka(kafkaClient(config), { clientId: 'kafka-pg-pipeline-watchdog' }).producer({ idempotent: true });
  await producer.connect();
  try {
    await producer.send({
      topic: config.pipeline.dlqTopic,
      acks: -1,
      messages: [
        {
          key: message.key,
          value: message.value,
          timestamp: message.timestamp,
          headers: {
            ...(message.headers ?? {}),
            '__connect.errors.topic': config.pipeline.topic,
            '__connect.errors.partition': String(partition),
            '__connect.errors.offset': String(offset),
            '__connect.errors.connector.name': connector,
            '__connect.errors.stage': 'TASK_PUT',
            '__connect.errors.exception.class.name': 'org.postgresql.util.PSQLException',
            '__connect.errors.exception.message': reason,
            'kafka-pg-pipeline.quarantined-by': 'watchdog',
          },
        },
      ],
    });
  } finally {
    await producer.disconnect();
  }
}
