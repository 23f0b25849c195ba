// @ts-check
// The original demo's design, rebuilt faithfully for comparison (not for use):
// JSON messages without a key, a flush after every message, and a consumer
// that inserts and commits one row at a time into a table without a key.
import { createKafka, kafkaClient } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * @param {Config} config
 * @param {{ id: number, ts: number, stock: number, sales: number }[]} rows
 */
export async function demoBaseline(config, rows) {
  const kafka = createKafka(kafkaClient(config, 'producer'), { clientId: 'bench-demo' });
  const topic = `bench-demo-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const db = pgClient(config);
  await db.connect();
  await db.query('create schema if not exists bench_demo');
  await db.query('drop table if exists bench_demo.synthetic_data');
  await db.query(
    'create table bench_demo.synthetic_data (id text, "timestamp" timestamp, stock_price double precision, sales_trend double precision)',
  );

  let inserted = 0;
  let lastInsert = 0;
  const consumer = kafka.consumer({ groupId: `${topic}-consumer` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const row = JSON.parse(String(message.value));
      // One INSERT, committed on its own (autocommit), per message.
      await db.query('insert into bench_demo.synthetic_data (id, "timestamp", stock_price, sales_trend) values ($1, $2, $3, $4)', [
        row.id,
        row.timestamp,
        row.stock_price,
        row.sales_trend,
      ]);
      inserted++;
      lastInsert = performance.now();
    },
  });

  const producer = kafka.producer();
  await producer.connect();
  const t0 = performance.now();
  for (const r of rows) {
    // No key; flushed (acknowledged) before the next one is sent.
    await producer.send({
      topic,
      messages: [
        {
          value: JSON.stringify({ id: String(r.id), timestamp: new Date(r.ts).toISOString(), stock_price: r.stock, sales_trend: r.sales }),
        },
      ],
    });
  }
  const producerSeconds = (performance.now() - t0) / 1000;
  const deadline = Date.now() + 600_000;
  while (inserted < rows.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const seconds = (lastInsert - t0) / 1000;

  await producer.disconnect();
  await consumer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  await db.query('drop schema bench_demo cascade');
  await db.end();
  return {
    rows: rows.length,
    inserted,
    producerRowsPerSecond: rows.length / producerSeconds,
    endToEndSeconds: seconds,
    endToEndRowsPerSecond: inserted / seconds,
  };
}
