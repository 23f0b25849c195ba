// What the sink diverts, and getting it back: the same id twice in one batch
// lands (no task failure), a registry outage while tasks restart with a
// backlog dead-letters rows that `npm run dlq:replay` brings back with their
// values, and `npm run status` fails and says why while they wait.
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { connectApi, connectorStatus } from '#lib/connect.mjs';
import { consumerLag, kafkaAdmin, topicSize } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { services, up } from '../../platform/lifecycle.mjs';
import { SCHEMA_FILE, readAvsc } from '../../producer/avro.js';
import { frame } from '../../producer/wire.js';
import { NO_DIFFERENCE, cli, dist, pipelineReady, summariesDifferFromRecompute, until } from './helpers.js';

const FIRST_ID = 950_000;
const db = pgClient(config);
const admin = kafkaAdmin(config);
const kafka = new kafkajs.Kafka({ clientId: 'quarantine-test', brokers: [config.kafka.bootstrap], logLevel: kafkajs.logLevel.NOTHING });
const avsc = readAvsc(SCHEMA_FILE);
let schemaId: number;

const record = (id: number, price: number) => ({
  key: String(id),
  value: frame(
    schemaId,
    avsc.type.toBuffer({ id, timestamp: Date.UTC(2024, 5, 1, 0, id % 1000), stock_price: price, sales_trend: price * 2 }),
  ),
});

async function send(messages: { key: string; value: Buffer }[], partition?: number) {
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  try {
    await producer.send({ topic: config.pipeline.topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
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
