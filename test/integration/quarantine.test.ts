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
import { pgClient } from '#lib/pg.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { services, up } from '../../platform/lifecycle.mjs';
import { logFile } from '../../platform/service.mjs';
import { SCHEMA_FILE, readAvsc } from '../../producer/avro.js';
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
  it('dead-letters the backlog, status fails and says why, and dlq:replay lands every row with its value', async () => {
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
    try {
      // Restarted tasks start with no schema cached, as after any task failure.
      expect((await connectApi(config, 'POST', `/connectors/${sink}/restart?includeTasks=true`)).status).toBeLessThan(300);
      expect((await connectApi(config, 'PUT', `/connectors/${sink}/resume`)).status).toBe(202);
      await until(async () => (await topicSize(admin, config.pipeline.dlqTopic)) >= dlqBefore + n, 180_000, `${n} dead letters`);
      const status = await cli('status.mjs', [], {}, 90_000);
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(new RegExp(`problem: ${n} records in the dead letter queue not replayed`));
    } finally {
      await up(config, { log: () => {} });
    }
    expect(await prices(from, from + n - 1)).toEqual([]);

    const replayed = await dist('producer/replay-cli.js', []).done;
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stdout).toMatch(new RegExp(`${n} of ${n} sent back to ${config.pipeline.topic}`));
    await waitForSink();
    const landed = await prices(from, from + n - 1);
    expect(landed).toHaveLength(n);
    expect(landed.every((r, i) => r.id === from + i && r.stock_price === 1000 + i)).toBe(true);

    // Idempotent: nothing is sent twice.
    const again = await dist('producer/replay-cli.js', []).done;
    expect(again.stdout).toMatch(/nothing to replay/);
    const status = await cli('status.mjs', [], {}, 90_000);
    expect(status.stdout).not.toMatch(/dead letter queue not replayed/);
    await runEtl(config);
    expect(await summariesDifferFromRecompute(db)).toEqual(NO_DIFFERENCE);
  }, 420_000);
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
