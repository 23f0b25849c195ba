// What the sink diverts, and getting it back: the same id twice in one batch
// lands (no task failure), a registry outage while tasks restart with a
// backlog dead-letters rows that `npm run dlq:replay` brings back with their
// values, and `npm run status` fails and says why while they wait; a record
// PostgreSQL refuses is moved to the DLQ by the watchdog, unless PostgreSQL
// refuses every write of the sink.
import fs from 'node:fs';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { connectApi, connectorStatus } from '#lib/connect.mjs';
import { consumerLag, headerText, kafkaAdmin, readRange, topicSize } from '#lib/kafka.mjs';
import { readLock } from '#lib/lock.mjs';
import { pgClient } from '#lib/pg.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { readWatchdogState } from '../../ops/watchdog.mjs';
import { services, up } from '../../platform/lifecycle.mjs';
import { logFile } from '../../platform/service.mjs';
import { SCHEMA_FILE, readAvsc } from '../../producer/avro.js';
import { replayLockFile } from '../../producer/replay.js';
import { frame } from '../../producer/wire.js';
import { NO_DIFFERENCE, SINK_TASKS, cli, dist, pipelineReady, summariesDifferFromRecompute, until } from './helpers.js';

const FIRST_ID = 950_000;
const db = pgClient(config);
const admin = kafkaAdmin(config);
const kafka = new kafkajs.Kafka({ clientId: 'quarantine-test', brokers: [config.kafka.bootstrap], logLevel: kafkajs.logLevel.NOTHING });
const avsc = readAvsc(SCHEMA_FILE);
let schemaId: number;

const record = (id: number, price: number, timestamp = Date.UTC(2024, 5, 1, 0, id % 1000)) => ({
  key: String(id),
  value: frame(schemaId, avsc.type.toBuffer({ id, timestamp, stock_price: price, sales_trend: price * 2 })),
});

async function send(messages: { key: string; value: Buffer }[], partition?: number) {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  try {
    return await producer.send({ topic: config.pipeline.topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
  } finally {
    await producer.disconnect();
  }
}

const waitForSink = (ms = 120_000) =>
  until(async () => (await consumerLag(admin, config.pipeline.topic, config.sink.group)) === 0, ms, 'the sink to catch up');
const prices = async (from: number, to: number) =>
  (await db.query('select id::int, stock_price from synthetic_data where id between $1 and $2 order by id', [from, to])).rows;

beforeAll(async () => {
  await pipelineReady();
  await db.connect();
  await admin.connect();
  const registry = new SchemaRegistry({ host: config.registry.ccompatUrl });
  schemaId = (await registry.register({ type: SchemaType.AVRO, schema: avsc.text }, { subject: config.pipeline.subject })).id;
  // Earlier tests leave poison in the DLQ on purpose: handled, as a user would.
  const dropped = await dist('producer/replay-cli.js', ['--drop']).done;
  expect(dropped.code, dropped.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await db.query('delete from synthetic_data where id >= $1', [FIRST_ID]);
  await runEtl(config);
  await db.end();
  await admin.disconnect();
});

describe('the same id twice in one batch', () => {
  it('lands the later value, and the task keeps running', async () => {
    const a = FIRST_ID + 1;
    const b = FIRST_ID + 2;
    // Adjacent in one partition, so one poll and one batch hold both.
    await send([record(a, 10), record(a, 11), record(b, 20)], 0);
    await waitForSink();
    expect(await prices(a, b)).toEqual([
      { id: a, stock_price: 11 },
      { id: b, stock_price: 20 },
    ]);
    const { json } = await connectorStatus(config, config.sink.connector);
    expect(
      json.tasks.every((t: { state: string }) => t.state === 'RUNNING'),
      JSON.stringify(json),
    ).toBe(true);
  });
});

describe('the registry down while the sink restarts with a backlog', () => {
  it('heals with no person: the watchdog pauses the sink, resumes it once the registry answers, and sends back what the window dead-lettered', async () => {
    const n = 2000;
    const from = FIRST_ID + 100;
    const sink = encodeURIComponent(config.sink.connector);
    const dlqBefore = await topicSize(admin, config.pipeline.dlqTopic);
    // A backlog while the sink is paused.
    expect((await connectApi(config, 'PUT', `/connectors/${sink}/pause`)).status).toBe(202);
    await until(async () => (await connectorStatus(config, config.sink.connector)).json.connector.state === 'PAUSED', 30_000, 'paused');
    await send(Array.from({ length: n }, (_, i) => record(from + i, 1000 + i)));
    const registry = services(config).find((s) => s.name === 'registry')!;
    await registry.stop();
    const down = Date.now();
    let window = 0;
    try {
      // Restarted tasks start with no schema cached, as after any task failure: what they
      // convert before the watchdog's next turn is dead-lettered.
      expect((await connectApi(config, 'POST', `/connectors/${sink}/restart?includeTasks=true`)).status).toBeLessThan(300);
      expect((await connectApi(config, 'PUT', `/connectors/${sink}/resume`)).status).toBe(202);
      await until(async () => readWatchdogState(config)?.heal?.hold, 60_000, 'the watchdog to pause the sink');
      await until(async () => (await connectorStatus(config, config.sink.connector)).json.connector.state === 'PAUSED', 30_000, 'paused');
      window = (await topicSize(admin, config.pipeline.dlqTopic)) - dlqBefore;
      const status = await cli('status.mjs', [], {}, 90_000);
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(/watchdog: synthetic-data-sink paused since .*: the schema registry does not answer/);
    } finally {
      await up(config, { log: () => {} });
    }
    // Nobody runs dlq:replay.
    await until(async () => (await prices(from, from + n - 1)).length === n, 300_000, `all ${n} rows landed with no replay by hand`);
    const healed = (Date.now() - down) / 1000;
    const landed = await prices(from, from + n - 1);
    expect(landed.every((r, i) => r.id === from + i && r.stock_price === 1000 + i)).toBe(true);
    // The watchdog records what it healed a moment after the rows it sent back land; at least
    // what was counted at the pause (tasks may dead-letter what they held a moment after it).
    const healedLines = () => (readWatchdogState(config)?.heal?.healed ?? []).map((h) => h.what).join('\n');
    const sentBack = () =>
      [...healedLines().matchAll(/sent back (\d+) record\(s\) dead-lettered for a passing cause/g)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    await until(
      async () => /the schema registry answered again/.test(healedLines()) && sentBack() >= window,
      30_000,
      'the watchdog to record what it healed',
    );
    expect(readWatchdogState(config)?.heal?.hold).toBeUndefined();
    expect(healedLines()).toMatch(/the schema registry answered again: synthetic-data-sink resumed/);
    const status = await cli('status.mjs', [], {}, 90_000);
    expect(status.stdout).toMatch(/healed .* ago: the schema registry answered again/);
    expect(status.stdout).not.toMatch(/paused since/);
    await runEtl(config);
    expect(await summariesDifferFromRecompute(db)).toEqual(NO_DIFFERENCE);
    console.log(
      `registry outage: ${window} of ${n} dead-lettered in the window before the pause, all ${n} landed ${healed.toFixed(0)} s after the registry stopped, with no person`,
    );
  }, 480_000);
});

/** The dead letters after the first `from` of its one partition (the DLQ's size before), with their headers as text. */
async function deadLettersSince(from: number) {
  const out: { key: string; headers: Record<string, string | undefined> }[] = [];
  const offsets = await admin.fetchTopicOffsets(config.pipeline.dlqTopic);
  expect(offsets).toHaveLength(1);
  const ranges = offsets.map((p) => ({ partition: p.partition, from: Math.max(Number(p.low), from), to: Number(p.high) }));
  await readRange([config.kafka.bootstrap], config.pipeline.dlqTopic, ranges, (m) => {
    const names = Object.keys(m.headers ?? {});
    out.push({ key: String(m.key), headers: Object.fromEntries(names.map((n) => [n, headerText(m.headers, n)])) });
  });
  return out;
}

const sinkConfig = async () => (await connectApi(config, 'GET', `/connectors/${encodeURIComponent(config.sink.connector)}/config`)).json;
const watchdogLogSince = (size: number) => fs.readFileSync(logFile(config, 'watchdog'), 'utf8').slice(size);

describe('a value PostgreSQL refuses, written straight to the topic', () => {
  it('is moved to the dead letter queue with its reason; the rows after it land; the sink keeps its batch size', async () => {
    const from = FIRST_ID + 10_000;
    const refusedId = from + 5;
    const dlqBefore = await topicSize(admin, config.pipeline.dlqTopic);
    const batchSize = (await sinkConfig())['batch.size'];
    const started = Date.now();
    // One partition, the refused record between valid ones: a year the table does not hold
    // (pgjdbc sends it as -infinity, which synthetic_data_timestamp_finite refuses).
    const meta = await send(
      Array.from({ length: 11 }, (_, i) => (i === 5 ? record(from + i, 7, Date.UTC(-5000, 0, 1)) : record(from + i, 100 + i))),
      1,
    );
    const refusedOffset = Number(meta[0].baseOffset) + 5;
    await waitForSink(240_000);
    const recovered = (Date.now() - started) / 1000;
    const landed = await prices(from, from + 10);
    expect(landed.map((r) => r.id)).toEqual(Array.from({ length: 11 }, (_, i) => from + i).filter((id) => id !== refusedId));
    expect(landed.every((r) => r.stock_price === 100 + r.id - from)).toBe(true);

    const letters = await deadLettersSince(dlqBefore);
    expect(letters.map((l) => l.key)).toEqual([String(refusedId)]);
    expect(letters[0].headers).toMatchObject({
      '__connect.errors.topic': config.pipeline.topic,
      '__connect.errors.partition': '1',
      '__connect.errors.offset': String(refusedOffset),
      '__connect.errors.stage': 'TASK_PUT',
      'kafka-pg-pipeline.quarantined-by': 'watchdog',
    });
    expect(letters[0].headers['__connect.errors.exception.message']).toMatch(/violates check constraint "synthetic_data_timestamp_finite"/);

    const { json } = await connectorStatus(config, config.sink.connector);
    expect(json.tasks.map((t: { state: string }) => t.state)).toEqual(Array(SINK_TASKS).fill('RUNNING'));
    expect((await sinkConfig())['batch.size']).toBe(batchSize);
    const status = await cli('status.mjs', [], {}, 90_000);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(
      /problem: 1 record in the dead letter queue not replayed, .*TASK_PUT: PSQLException: ERROR: new row .* violates/,
    );
    console.log(
      `a value PostgreSQL refuses: 10 of 11 rows landed, 1 in the DLQ, ${recovered.toFixed(1)} s from send to the sink caught up`,
    );

    const dropped = await dist('producer/replay-cli.js', ['--drop']).done;
    expect(dropped.code, dropped.stderr).toBe(0);
    expect((await cli('status.mjs', [], {}, 90_000)).stdout).not.toMatch(/dead letter queue not replayed/);
  }, 300_000);

  it('is not quarantined when PostgreSQL refuses every write of the sink: the rows wait, then land once it is fixed', async () => {
    const from = FIRST_ID + 20_000;
    const dlqBefore = await topicSize(admin, config.pipeline.dlqTopic);
    const logBefore = fs.statSync(logFile(config, 'watchdog')).size;
    await db.query('revoke insert, update on synthetic_data from pipeline_sink');
    try {
      await send([record(from, 1), record(from + 1, 2), record(from + 2, 3)], 2);
      await until(async () => /refuses every write of the sink/.test(watchdogLogSince(logBefore)), 180_000, 'the watchdog to judge it');
      expect(watchdogLogSince(logBefore)).toMatch(/permission denied for table synthetic_data/);
      expect(await topicSize(admin, config.pipeline.dlqTopic)).toBe(dlqBefore);
      expect(await prices(from, from + 2)).toEqual([]);
    } finally {
      await db.query('grant insert, update on synthetic_data to pipeline_sink');
    }
    await waitForSink(180_000);
    expect(await prices(from, from + 2)).toEqual([
      { id: from, stock_price: 1 },
      { id: from + 1, stock_price: 2 },
      { id: from + 2, stock_price: 3 },
    ]);
    expect(await topicSize(admin, config.pipeline.dlqTopic)).toBe(dlqBefore);
  }, 300_000);
});

/**
 * Records as Connect dead-letters them (its error headers, the original
 * record's timestamp), written straight to the DLQ: a content error, which
 * stays for a person until `dlq:replay`.
 */
async function deadLetters(messages: { key: string; value: Buffer; timestamp: number }[]) {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  try {
    // A broker takes a request up to a megabyte, Connect's headers included.
    for (let i = 0; i < messages.length; i += 1000) {
      await producer.send({
        topic: config.pipeline.dlqTopic,
        acks: -1,
        messages: messages.slice(i, i + 1000).map((m) => ({
          key: m.key,
          value: m.value,
          timestamp: String(m.timestamp),
          headers: {
            '__connect.errors.topic': config.pipeline.topic,
            '__connect.errors.stage': 'VALUE_CONVERTER',
            '__connect.errors.exception.class.name': 'org.apache.kafka.connect.errors.DataException',
            '__connect.errors.exception.message': 'held back by the replay tests',
          },
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** The landed rows of [from, to], with their Kafka timestamps in ms. */
const landedWithTimestamps = async (from: number, to: number) =>
  (
    await db.query(
      `select id::int, stock_price, (extract(epoch from kafka_timestamp) * 1000)::bigint::text as kafka_ms
       from synthetic_data where id between $1 and $2 order by id`,
      [from, to],
    )
  ).rows;

const replayCommitted = async () =>
  (await admin.fetchOffsets({ groupId: config.pipeline.replayGroups.dlq, topics: [config.pipeline.dlqTopic] }))[0].partitions.reduce(
    (sum, p) => sum + Math.max(Number(p.offset), 0),
    0,
  );

const topicEnd = async (topic: string) =>
  (await admin.fetchTopicOffsets(topic)).reduce((sum: number, p: { high: string }) => sum + Number(p.high), 0);

describe('dlq:replay and newer values', () => {
  beforeAll(async () => {
    const dropped = await dist('producer/replay-cli.js', ['--drop']).done;
    expect(dropped.code, dropped.stderr).toBe(0);
  });

  it("keeps a dead letter's original timestamp, so a newer value of its id stays", async () => {
    // Connect's own dead letter keeps the timestamp of the record it could not take.
    const dlqBefore = await topicEnd(config.pipeline.dlqTopic);
    const poisonAt = Date.now() - 3_600_000;
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    await producer
      .send({
        topic: config.pipeline.topic,
        acks: -1,
        messages: [{ key: 'not avro', value: 'not avro', timestamp: String(poisonAt), partition: 0 }],
      })
      .finally(() => producer.disconnect());
    // Connect commits a partition's offset past a dead letter only with a record after it.
    await send([record(FIRST_ID + 30_002, 7)], 0);
    await until(async () => (await topicEnd(config.pipeline.dlqTopic)) > dlqBefore, 60_000, 'the dead letter');
    const stamps: string[] = [];
    await readRange([config.kafka.bootstrap], config.pipeline.dlqTopic, [{ partition: 0, from: dlqBefore, to: dlqBefore + 1 }], (m) => {
      stamps.push(m.timestamp);
    });
    expect(stamps).toEqual([String(poisonAt)]);
    expect((await dist('producer/replay-cli.js', ['--drop']).done).code).toBe(0);

    // A dead letter of an hour ago, then a correction of its id lands; and a
    // dead letter whose id nothing corrected.
    const corrected = FIRST_ID + 30_000;
    const alone = corrected + 1;
    const deadAt = Date.now() - 3_600_000;
    await deadLetters([
      { ...record(corrected, 1), timestamp: deadAt },
      { ...record(alone, 5), timestamp: deadAt },
    ]);
    await send([record(corrected, 2)]);
    await waitForSink();
    const [{ kafka_ms: correctedAt }] = await landedWithTimestamps(corrected, corrected);

    const replayed = await dist('producer/replay-cli.js', []).done;
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stdout).toMatch(new RegExp(`2 of 2 sent back to ${config.pipeline.topic}`));
    expect(replayed.stderr).not.toMatch(/warning: .*LogAppendTime/);
    await waitForSink();
    expect(await landedWithTimestamps(corrected, alone)).toEqual([
      { id: corrected, stock_price: 2, kafka_ms: correctedAt },
      { id: alone, stock_price: 5, kafka_ms: String(deadAt) },
    ]);
  }, 300_000);

  const backlog = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ ...record(from + i, 1000 + i), timestamp: Date.now() }));
  const allLanded = async (from: number, n: number) => {
    await waitForSink();
    const landed = await prices(from, from + n - 1);
    expect(landed).toHaveLength(n);
    expect(landed.every((r, i) => r.id === from + i && r.stock_price === 1000 + i)).toBe(true);
  };

  it('refuses a second replay while one runs, in one line naming the first', async () => {
    const n = 30_000;
    const from = FIRST_ID + 100_000;
    await deadLetters(backlog(from, n));
    const lockFile = replayLockFile(config.runDir, config.pipeline.dlqTopic);
    const first = dist('producer/replay-cli.js', []);
    try {
      await until(async () => readLock(lockFile)?.pid === first.child.pid, 30_000, 'the first replay to take its lock');
      // Frozen, it holds its lock and sends nothing: what the topic gets now is the second's.
      first.child.kill('SIGSTOP');
      const sentBefore = await topicEnd(config.pipeline.topic);
      const second = await dist('producer/replay-cli.js', []).done;
      expect(second.code).toBe(1);
      expect(second.stdout).toBe('');
      expect(second.stderr).toMatch(
        new RegExp(
          `^error: another replay \\(pid ${first.child.pid}, started \\S+\\) is sending ${config.pipeline.dlqTopic} back to ${config.pipeline.topic}: wait for it to finish, or stop it .*\\n$`,
        ),
      );
      expect(await topicEnd(config.pipeline.topic)).toBe(sentBefore);
    } finally {
      first.child.kill('SIGCONT');
    }
    const done = await first.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`${n} of ${n} sent back`));
    await allLanded(from, n);
  }, 300_000);

  it('goes on after a replay killed midway, sending again at most its unacknowledged tail', async () => {
    const n = 30_000;
    const from = FIRST_ID + 200_000;
    const start = await replayCommitted();
    await deadLetters(backlog(from, n));
    const sentBefore = await topicEnd(config.pipeline.topic);
    const first = dist('producer/replay-cli.js', []);
    await until(async () => (await replayCommitted()) > start, 60_000, 'the first replay to commit progress');
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    const progress = (await replayCommitted()) - start;
    const sentByFirst = (await topicEnd(config.pipeline.topic)) - sentBefore;
    expect(progress).toBeGreaterThan(0);
    expect(progress).toBeLessThan(n);
    // Sent but not committed: at most the batch Kafka had not acknowledged yet.
    expect(sentByFirst - progress).toBeGreaterThanOrEqual(0);
    expect(sentByFirst - progress).toBeLessThanOrEqual(1000);

    // The lock of the killed replay is stale: the next one takes it.
    const second = await dist('producer/replay-cli.js', []).done;
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`${n - progress} of ${n - progress} sent back`));
    expect((await topicEnd(config.pipeline.topic)) - sentBefore).toBe(sentByFirst + n - progress);
    await allLanded(from, n);
    console.log(
      `replay killed after ${progress} of ${n} acknowledged (${sentByFirst - progress} sent and not committed); the next sent the other ${n - progress}`,
    );
  }, 300_000);
});
