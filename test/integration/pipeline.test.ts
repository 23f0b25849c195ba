// End to end, in the shape of debezium-examples' unwrap-smt test: start ->
// connectors RUNNING -> produce -> poll PostgreSQL -> check. Runs `npm start`
// itself and checks the result against the Parquet file with computations of
// its own, not the pipeline's SQL.
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { connectApi } from '#lib/connect.mjs';
import { consumerLag, kafkaAdmin, topicSize } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { readAvsc, SCHEMA_FILE } from '../../producer/avro.js';
import { frame } from '../../producer/wire.js';
import {
  cli,
  dist,
  expectedChecksums,
  NO_DIFFERENCE,
  type Row,
  readDataset,
  summariesDifferFromRecompute,
  tableChecksums,
  until,
} from './helpers.js';

const MINUTE = 60_000;
const BUCKET = { stock: 10 * MINUTE, sales: 20 * MINUTE };
const admin = pgClient(config);
const kafkaAdminClient = kafkaAdmin(config);

let rows: Row[] = [];

beforeAll(async () => {
  const res = await cli('up.mjs', [], {}, 600_000);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  expect(res.stdout).toMatch(/^land .*527,040 rows in synthetic_data/m);
  rows = await readDataset(config.datasetFile);
  await admin.connect();
  await kafkaAdminClient.connect();
}, 600_000);

afterAll(async () => {
  await admin.end();
  await kafkaAdminClient.disconnect();
});

interface Bucket {
  start: number;
  avg: number;
  min: number;
  max: number;
  first: number;
  last: number;
  count: number;
}

/** The summaries, computed here in TypeScript from the Parquet rows. */
function expectedBuckets(data: Row[], width: number, pick: (r: Row) => number) {
  const buckets = new Map<number, { sum: number; min: number; max: number; first: Row; last: Row; count: number }>();
  for (const r of data) {
    const start = Math.floor(r.ts / width) * width; // epoch-aligned, so hour-aligned in UTC
    const v = pick(r);
    const b = buckets.get(start);
    if (!b) {
      buckets.set(start, { sum: v, min: v, max: v, first: r, last: r, count: 1 });
      continue;
    }
    b.sum += v;
    b.min = Math.min(b.min, v);
    b.max = Math.max(b.max, v);
    if (r.ts < b.first.ts || (r.ts === b.first.ts && r.id < b.first.id)) b.first = r;
    if (r.ts > b.last.ts || (r.ts === b.last.ts && r.id > b.last.id)) b.last = r;
    b.count++;
  }
  return new Map(
    [...buckets].map(([start, b]) => [
      start,
      { start, avg: b.sum / b.count, min: b.min, max: b.max, first: pick(b.first), last: pick(b.last), count: b.count },
    ]),
  );
}

async function tableBuckets(table: 'stock_price_summary' | 'sales_trend_summary', column: 'stock_price' | 'sales_trend') {
  const { rows: out } = await admin.query(`
    select extract(epoch from interval_start)::bigint * 1000 as start, avg_${column} as avg, min_${column} as min, max_${column} as max,
           first_${column} as first, last_${column} as last, sample_count as count
    from ${table}`);
  return new Map(out.map((r) => [Number(r.start), { ...r, start: Number(r.start) } as Bucket]));
}

function expectSameBuckets(actual: Map<number, Bucket>, expected: Map<number, Bucket>) {
  expect(actual.size).toBe(expected.size);
  for (const [start, e] of expected) {
    const a = actual.get(start);
    expect(a, new Date(start).toISOString()).toBeDefined();
    expect(a!.count).toBe(e.count);
    expect(a!.min).toBe(e.min);
    expect(a!.max).toBe(e.max);
    expect(a!.first).toBe(e.first);
    expect(a!.last).toBe(e.last);
    // Summation order differs between PostgreSQL and here: compare to a few ulps.
    expect(Math.abs(a!.avg - e.avg)).toBeLessThanOrEqual(Math.abs(e.avg) * 1e-12);
  }
}

/** The invariant: each summary equals a full recompute from the raw table. */
/** Both summaries hold exactly the buckets computed in TypeScript from the Parquet file. */
async function expectSummariesMatchFile() {
  expectSameBuckets(
    await tableBuckets('stock_price_summary', 'stock_price'),
    expectedBuckets(rows, BUCKET.stock, (r) => r.stock),
  );
  expectSameBuckets(
    await tableBuckets('sales_trend_summary', 'sales_trend'),
    expectedBuckets(rows, BUCKET.sales, (r) => r.sales),
  );
}

async function expectSummariesEqualRecompute() {
  expect(await summariesDifferFromRecompute(admin)).toEqual(NO_DIFFERENCE);
}

/** Until the sink has consumed everything in the topic (committed offsets). */
async function waitForSink() {
  await until(
    async () => (await consumerLag(kafkaAdminClient, config.pipeline.topic, config.sink.group)) === 0,
    120_000,
    'the sink to catch up',
  );
}

describe('the pipeline, end to end', () => {
  it('lands exactly 527,040 distinct ids whose values equal the Parquet file', async () => {
    expect(rows).toHaveLength(527_040);
    expect(await tableChecksums(admin)).toEqual(expectedChecksums(rows));
    const {
      rows: [extra],
    } = await admin.query('select count(*)::int as n from synthetic_data where id > 527040');
    expect(extra.n).toBe(0);
  });

  it('reads the topic and the dead letter queue named in .env, through Connect env placeholders', async () => {
    const name = encodeURIComponent(config.sink.connector);
    const active = (await connectApi(config, 'GET', `/connectors/${name}/topics`)).json;
    expect(active[config.sink.connector].topics).toEqual([config.pipeline.topic]);
    const stored = (await connectApi(config, 'GET', `/connectors/${name}`)).json.config;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Connect's placeholders, stored as written
    expect([stored.topics, stored['errors.deadletterqueue.topic.name']]).toEqual(['${env:TOPIC}', '${env:DLQ_TOPIC}']);
  });

  it('keeps both summaries equal to a computation from the Parquet file, and to a full recompute', async () => {
    await runEtl(config);
    await expectSummariesMatchFile();
    await expectSummariesEqualRecompute();
  });

  it('stores the Kafka record timestamp and the ingestion time, so latency is a SQL query', async () => {
    const {
      rows: [r],
    } = await admin.query(`
      select count(*) filter (where kafka_timestamp is null)::int as missing,
             count(*) filter (where extract(milliseconds from kafka_timestamp)::int % 1000 <> 0)::int as with_ms,
             count(*) filter (where ingested_at < kafka_timestamp)::int as before_sent,
             percentile_cont(0.5) within group (order by extract(epoch from ingested_at - kafka_timestamp)) as p50_s
      from synthetic_data`);
    expect(r.missing).toBe(0);
    // Kept to the millisecond (most send times are not on a whole second).
    expect(r.with_ms).toBeGreaterThan(527_040 / 2);
    expect(r.before_sent).toBe(0);
    expect(r.p50_s).toBeGreaterThan(0);
  });

  it('duplicates nothing when the whole file is produced again', async () => {
    const before = await admin.query('select count(*)::int as n from stock_price_summary');
    const res = await dist('producer/cli.js', ['--file', config.datasetFile, '--restart'], {}, 300_000).done;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/sent 527,040/);
    await waitForSink();
    expect(await tableChecksums(admin)).toEqual(expectedChecksums(rows));
    await runEtl(config);
    expect((await admin.query('select count(*)::int as n from stock_price_summary')).rows[0].n).toBe(before.rows[0].n);
    await expectSummariesMatchFile();
  }, 300_000);

  it('refreshes an old bucket when a late row lands in it, and lands valid rows around a poison message, which goes to the dead letter queue', async () => {
    const registry = new SchemaRegistry({ host: config.registry.ccompatUrl });
    // The id of the schema these records are written in (registering it again
    // returns that id): the subject's latest version may be a newer one.
    const { type, text } = readAvsc(SCHEMA_FILE);
    const { id: schemaId } = await registry.register({ type: SchemaType.AVRO, schema: text }, { subject: config.pipeline.subject });
    const lateId = 527_041;
    const afterId = 527_042;
    // Sub-second on purpose: Debezium 3.6's unnest inserts dropped the milliseconds.
    const late = { id: lateId, timestamp: Date.UTC(2024, 0, 1, 0, 5, 30, 123), stock_price: 5000, sales_trend: 1 };
    const after = { id: afterId, timestamp: Date.UTC(2024, 6, 1, 12, 0), stock_price: 10, sales_trend: 10 };
    const dlqBefore = await topicSize(kafkaAdminClient, config.pipeline.dlqTopic);

    const kafka = new kafkajs.Kafka({ clientId: 'e2e', brokers: [config.kafka.bootstrap], logLevel: kafkajs.logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      // One partition for all three, so the poison sits between the two valid rows.
      await producer.send({
        topic: config.pipeline.topic,
        messages: [
          { key: String(lateId), value: frame(schemaId, type.toBuffer(late)), partition: 0 },
          { key: 'poison', value: Buffer.from('this is not Avro'), partition: 0 },
          { key: String(afterId), value: frame(schemaId, type.toBuffer(after)), partition: 0 },
        ],
      });
    } finally {
      await producer.disconnect();
    }
    try {
      await waitForSink();
      const landed = await admin.query('select id, stock_price, "timestamp" from synthetic_data where id in ($1, $2) order by id', [
        lateId,
        afterId,
      ]);
      expect(landed.rows).toEqual([
        { id: String(lateId), stock_price: 5000, timestamp: new Date(late.timestamp) },
        { id: String(afterId), stock_price: 10, timestamp: new Date(after.timestamp) },
      ]);

      await until(
        async () => (await topicSize(kafkaAdminClient, config.pipeline.dlqTopic)) > dlqBefore,
        30_000,
        'the poison message in the dead letter queue',
      );
      // The next run (ours, or pg_cron's if it came first) refreshes that old bucket.
      await runEtl(config);
      const {
        rows: [refreshed],
      } = await admin.query(
        "select sample_count, max_stock_price, last_stock_price from stock_price_summary where interval_start = '2024-01-01 00:00:00+00'",
      );
      expect(refreshed).toEqual({ sample_count: 11, max_stock_price: 5000, last_stock_price: expect.any(Number) });
      await expectSummariesEqualRecompute();
    } finally {
      // Leave the table as the dataset made it: the deletes queue their buckets too.
      await admin.query('delete from synthetic_data where id in ($1, $2)', [lateId, afterId]);
      await runEtl(config);
    }
    await expectSummariesEqualRecompute();
    expect(
      (await admin.query("select sample_count from stock_price_summary where interval_start = '2024-01-01 00:00:00+00'")).rows[0]
        .sample_count,
    ).toBe(10);

    const dlq = await dlqMessages(kafkaAdminClient);
    expect(dlq.some((m) => String(m.key) === 'poison')).toBe(true);
    const poison = dlq.find((m) => String(m.key) === 'poison')!;
    expect(String(poison.headers?.['__connect.errors.topic'])).toBe(config.pipeline.topic);
    expect(String(poison.headers?.['__connect.errors.exception.class.name'])).toMatch(/Exception/);
  }, 180_000);

  it('npm start calls a load landed only when every row of the file is in the table', async () => {
    const gone = rows[6];
    await admin.query('delete from synthetic_data where id = $1', [gone.id]);
    try {
      const res = await cli('up.mjs', [], {}, 300_000);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^error: 1 of the 527,040 rows sent are not in synthetic_data.*npm run status/m);
    } finally {
      // With a Kafka timestamp, as the sink writes it: a later run of this file checks every row has one.
      await admin.query(
        'insert into synthetic_data (id, "timestamp", stock_price, sales_trend, kafka_timestamp) values ($1, to_timestamp($2 / 1000.0), $3, $4, now())',
        [gone.id, gone.ts, gone.stock, gone.sales],
      );
    }
    const again = await cli('up.mjs', [], {}, 300_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^check .*all 527,040 rows of data\/synthetic_data\.parquet are in synthetic_data/m);
  }, 600_000);
});

async function dlqMessages(adminClient: kafkajs.Admin) {
  const kafka = new kafkajs.Kafka({ clientId: 'e2e-dlq', brokers: [config.kafka.bootstrap], logLevel: kafkajs.logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `e2e-dlq-${Date.now()}` });
  const got: kafkajs.KafkaMessage[] = [];
  const total = await topicSize(adminClient, config.pipeline.dlqTopic);
  await consumer.connect();
  await consumer.subscribe({ topic: config.pipeline.dlqTopic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      got.push(message);
    },
  });
  await until(async () => got.length >= total, 30_000, 'the dead letter queue');
  await consumer.disconnect();
  return got;
}
