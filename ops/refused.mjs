// @ts-check
// A record PostgreSQL refuses (a constraint, a value out of range) fails the
// Debezium sink's task on every retry: Debezium 3.6 has no errant-record
// reporter for database errors, so its partition would wait for good. The
// watchdog isolates such a record instead: with batch.size=1 the task fails
// on that record alone, and the failing statement names its values, its
// partition and offset among them (the sink's InsertField sets
// kafka_partition and kafka_offset). That exact record is read, every record
// before it in its partition since the sink's committed offset is proved
// landed (or dead-lettered by Connect), the record is copied to the dead
// letter queue with PostgreSQL's reason (where `npm run status` shows it and
// `npm run dlq:replay` finds it), and the sink's offset moved one past it.
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
  headerText,
  kafkaClient,
  readRange,
  topicReplication,
  withKafkaAdmin,
} from '#lib/kafka.mjs';
import { withPg } from '#lib/pg.mjs';
import { delay } from '#lib/procs.mjs';
import { notLanded, recordKey, refusal, refusedRow, sameRefusal } from './trace.mjs';

export { recordKey, notLanded, refusal, refusedRow, rootCause, sameRefusal } from './trace.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/** How long the search for a refused record may go without the sink moving. */
const ISOLATION_STALL_MS = 180_000;

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
 * The refused record itself, and proof that every record before it in its
 * partition (from the sink's committed offset) landed or was dead-lettered:
 * only then may the sink's offset move past it. Reads the whole span, however
 * long (a stall, not a length, ends the read).
 * @param {Config} config @param {import('kafkajs').Admin} admin
 * @param {{ id: string | null, partition: number, offset: number }} key
 * @returns {Promise<{ partition: number, offset: number, message: import('kafkajs').KafkaMessage } | { missing: string }>}
 */
async function readRefused(config, admin, key) {
  const { topic } = config.pipeline;
  const range = (await groupRange(admin, topic, config.sink.group)).find((r) => r.partition === key.partition);
  if (!range) return { missing: `partition ${key.partition} of ${topic} does not exist` };
  if (key.offset < range.from)
    return { missing: `offset ${key.offset} is behind the sink's committed offset ${range.from}: it was read already` };
  if (key.offset >= range.to) return { missing: `offset ${key.offset} is past the end of partition ${key.partition} (${range.to})` };
  const registry = new SchemaRegistry({
    host: config.registry.ccompatUrl,
    ...(registryAuth(config) ? { auth: registryAuth(config) } : {}),
  });
  /** @type {{ offset: number, id: string | null }[]} */
  const before = [];
  /** @type {import('kafkajs').KafkaMessage | null} */
  let refused = null;
  await readRange(kafkaClient(config), topic, [{ partition: key.partition, from: range.from, to: key.offset + 1 }], async (message) => {
    const offset = Number(message.offset);
    if (offset === key.offset) {
      refused = message;
      return false;
    }
    // Undecodable here: Connect could not convert it either, and dead-lettered it (checked below).
    /** @type {any} */
    const value = message.value ? await registry.decode(message.value).catch(() => null) : null;
    before.push({ offset, id: value?.id === undefined || value?.id === null ? null : String(value.id) });
  });
  if (!refused) return { missing: `offset ${key.offset} of partition ${key.partition} could not be read` };
  const found = /** @type {import('kafkajs').KafkaMessage} */ (refused);
  const value = found.value ? await registry.decode(found.value).catch(() => null) : null;
  if (key.id !== null && String(value?.id) !== key.id)
    return { missing: `the record at partition ${key.partition}, offset ${key.offset} is not id ${key.id}` };
  if (before.length > 0) {
    const ids = [...new Set(before.flatMap((r) => (r.id === null ? [] : [r.id])))];
    const rows = await withPg(config, 'sink', (db) =>
      db.query('select id::text as id, kafka_partition, kafka_offset from synthetic_data where id = any($1::bigint[])', [ids]),
    );
    const byId = new Map(
      rows.rows.map((r) => [r.id, { partition: r.kafka_partition, offset: r.kafka_offset === null ? null : Number(r.kafka_offset) }]),
    );
    const open = notLanded(before, byId, key.partition, new Set());
    const pending = open.length > 0 ? notLanded(open, byId, key.partition, await deadLettered(config, admin, key.partition)) : open;
    if (pending.length > 0)
      return {
        missing: `${pending.length} record(s) before it in partition ${key.partition} have not landed (first at offset ${pending[0].offset}): the sink is not past them yet`,
      };
  }
  return { partition: key.partition, offset: key.offset, message: found };
}

/**
 * The offsets of `partition` of the pipeline's topic that the dead letter
 * queue holds (Connect's context headers, and the watchdog's own).
 * @param {Config} config @param {import('kafkajs').Admin} admin @param {number} partition
 */
async function deadLettered(config, admin, partition) {
  /** @type {Set<number>} */
  const offsets = new Set();
  const { dlqTopic, topic } = config.pipeline;
  if (!(await admin.listTopics()).includes(dlqTopic)) return offsets;
  const ranges = (await admin.fetchTopicOffsets(dlqTopic)).map((p) => ({
    partition: p.partition,
    from: Number(p.low),
    to: Number(p.high),
  }));
  await readRange(kafkaClient(config), dlqTopic, ranges, (m) => {
    const h = (/** @type {string} */ name) => headerText(m.headers, name);
    if (h('__connect.errors.topic') === topic && Number(h('__connect.errors.partition')) === partition)
      offsets.add(Number(h('__connect.errors.offset')));
  });
  return offsets;
}

/**
 * Isolates the record PostgreSQL refuses, dead-letters it with the reason and
 * moves the sink past it. Returns what it did, in one line; throws a UserError
 * when a step fails (the connector is then left as the config says, and the
 * watchdog goes on restarting it).
 * @param {Config} config @param {string} name
 * @param {{ log: (line: string) => void, remember: (batchSize: string | null | undefined) => void, batchSize?: string | null, refusal?: string }} opts
 *   refusal: the refusal that made the watchdog call this: only the same one, on one record, counts (a deadlock or a
 *   statement timeout during the search is a passing fault, not this record's).
 *   remember: keeps the connector's own batch.size (null: none set) while it runs with 1, so a watchdog that
 *   dies midway restores it (`restoreBatchSize`); undefined once restored. batchSize: one remembered earlier.
 */
export async function quarantineRefused(config, name, { log, remember, batchSize: kept, refusal: expected }) {
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
    // Three minutes without progress, not in all: one record at a time through a backlog takes what it takes.
    let deadline = Date.now() + ISOLATION_STALL_MS;
    let lag = Infinity;
    let restartedAt = Date.now();
    while (!row) {
      if (Date.now() > deadline)
        throw new UserError(`${name}: the sink made no progress for ${ISOLATION_STALL_MS / 1000} s while isolating the refused record`);
      const { json } = await connectorStatus(config, name);
      for (const part of failedParts(json)) {
        const trace = String(part.trace ?? '');
        const found = refusedRow(trace);
        const why = refusal(trace);
        if (found && why && (expected === undefined || sameRefusal(why, expected))) {
          row = found;
          reason = why;
          break;
        }
      }
      if (row) break;
      const now = await withKafkaAdmin(config, (a) => consumerLag(a, config.pipeline.topic, config.sink.group));
      if (now < lag) deadline = Date.now() + ISOLATION_STALL_MS;
      lag = now;
      const running = json?.connector?.state === 'RUNNING' && json.tasks?.length > 0 && failedParts(json).length === 0;
      if (running && now === 0) {
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
    const summary = `id ${key.id ?? '?'}`;
    const { partition, offset } = key;
    if (partition === null || offset === null) {
      await restore();
      return {
        quarantined: false,
        line: `the refused row (${summary}) names no Kafka partition and offset: apply connect/${name}.json again (\`npm run connectors:apply\`), which sets them`,
      };
    }
    /** @type {string} */
    let missing = '';
    const done = await withKafkaAdmin(config, async (admin) => {
      const hit = await readRefused(config, admin, { id: key.id, partition, offset });
      if ('missing' in hit) {
        missing = hit.missing;
        return null;
      }
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
    if (!done)
      return { quarantined: false, line: `the refused record (${summary}; partition ${partition}, offset ${offset}) stays: ${missing}` };
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
