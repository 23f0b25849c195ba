// Each service of the platform doing its real job, reached the way the
// pipeline reaches it.
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { pgClient } from '#lib/pg.mjs';
import { AVRO_CONVERTER_CLASS, connectPlugins, JDBC_SINK_CLASS } from '../../platform/connect.mjs';
import { uniqueName, until } from './helpers.js';

const kafka = new Kafka({ clientId: 'platform-test', brokers: [config.kafka.bootstrap], logLevel: logLevel.NOTHING });

describe('kafka (kafkajs against a Kafka 4 broker)', () => {
  const admin = kafka.admin();
  afterAll(() => admin.disconnect());

  it('creates a topic, takes messages and serves them to a consumer group', async () => {
    const topic = uniqueName('platform-roundtrip');
    await admin.connect();
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })).toBe(true);

    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const sent = Array.from({ length: 10 }, (_, i) => ({ key: String(i), value: `message ${i}` }));
    await producer.send({ topic, messages: sent });
    await producer.disconnect();

    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(10);

    const consumer = kafka.consumer({ groupId: uniqueName('platform-test-group') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: string[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        received.push(String(message.value));
      },
    });
    await until(async () => received.length >= 10, 30_000, 'ten messages');
    await consumer.disconnect();
    expect(received.sort()).toEqual(sent.map((m) => m.value).sort());
    await admin.deleteTopics({ topics: [topic] });
  });
});

describe('registry (Apicurio through its Confluent-compatible API)', () => {
  it('registers an Avro schema and reads it back under the same id', async () => {
    const registry = new SchemaRegistry({ host: config.registry.ccompatUrl });
    const subject = uniqueName('platform-test-value');
    const schema = {
      type: 'record',
      name: 'Probe',
      namespace: 'test.platform',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'label', type: 'string' },
      ],
    };
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject });
    expect(id).toBeGreaterThan(0);
    expect(await registry.getLatestSchemaId(subject)).toBe(id);
    const readBack = await registry.getSchema(id);
    expect(JSON.parse(JSON.stringify(readBack))).toMatchObject({ name: 'test.platform.Probe' });

    const encoded = await registry.encode(id, { id: 7, label: 'seven' });
    expect(encoded[0]).toBe(0); // Confluent framing: magic byte, then the 4-byte id
    expect(encoded.readInt32BE(1)).toBe(id);
    expect(await registry.decode(encoded)).toEqual({ id: 7, label: 'seven' });
  });
});

describe('connect', () => {
  it('lists the Debezium JDBC sink and the Apicurio Avro converter', async () => {
    const plugins = await connectPlugins(config);
    expect(plugins).toContain(JDBC_SINK_CLASS);
    expect(plugins).toContain(AVRO_CONVERTER_CLASS);
  });
});

describe('postgres with pg_cron', () => {
  it('runs a scheduled job and records the run', async () => {
    const db = pgClient(config);
    await db.connect();
    const job = uniqueName('platform-test-job');
    const table = job.replace(/-/g, '_');
    try {
      await db.query(`CREATE TABLE ${table} (ran_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await db.query("SELECT cron.schedule($1, '* * * * *', $2) AS id", [job, `INSERT INTO ${table} DEFAULT VALUES`]);
      const jobId = rows[0].id;
      // pg_cron 1.4 schedules by the minute: the first run comes within 60 s.
      const run = await until(
        async () => {
          const res = await db.query("SELECT status FROM cron.job_run_details WHERE jobid = $1 AND status IN ('succeeded', 'failed')", [
            jobId,
          ]);
          return res.rows[0];
        },
        75_000,
        'the first pg_cron run',
      );
      expect(run.status).toBe('succeeded');
      expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBeGreaterThanOrEqual(1);
    } finally {
      await db.query('SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1', [job]);
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
    }
  });
});
