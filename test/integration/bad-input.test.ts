// Bad input, schema evolution, least privilege and secrets, against the real
// pipeline. Rows these tests add use ids above the dataset's and are removed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { connectApi } from '#lib/connect.mjs';
import { connectIdentity, pgPassword } from '#lib/credentials.mjs';
import { consumerLag, kafkaAdmin, topicSize } from '#lib/kafka.mjs';
import { pgClient, roleClient } from '#lib/pg.mjs';
import { connectorFiles } from '../../ops/connectors.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { ourPids } from '../../platform/lifecycle.mjs';
import { SCHEMA_FILE, readAvsc } from '../../producer/avro.js';
import { writeDataset } from '../../dataset/generate.js';
import { frame } from '../../producer/wire.js';
import { cli, dist, pipelineReady, tempDir, uniqueName, until, NO_DIFFERENCE, summariesDifferFromRecompute } from './helpers.js';

const FIRST_ID = 900_000;
const db = pgClient(config);
const admin = kafkaAdmin(config);
const registry = new SchemaRegistry({ host: config.registry.ccompatUrl });
const kafka = new kafkajs.Kafka({ clientId: 'bad-input', brokers: [config.kafka.bootstrap], logLevel: kafkajs.logLevel.NOTHING });
let dir: string;

beforeAll(async () => {
  await pipelineReady();
  await db.connect();
  await admin.connect();
  dir = tempDir('bad-input');
}, 180_000);

afterAll(async () => {
  await db.query('delete from synthetic_data where id >= $1', [FIRST_ID]);
  await runEtl(config);
  await db.end();
  await admin.disconnect();
  fs.rmSync(dir, { recursive: true, force: true });
});

const waitForSink = () =>
  until(async () => (await consumerLag(admin, config.pipeline.topic, config.sink.group)) === 0, 90_000, 'the sink to catch up');
const schemaOf = (fields: object[]) => ({ type: 'record', name: 'SyntheticData', namespace: 'io.github.kafkapgpipeline', fields });
const ts = { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } };

async function send(messages: { key: string; value: Buffer }[]) {
  const producer = kafka.producer();
  await producer.connect();
  try {
    // One partition, so order is kept: poison between valid rows.
    await producer.send({ topic: config.pipeline.topic, messages: messages.map((m) => ({ ...m, partition: 0 })) });
  } finally {
    await producer.disconnect();
  }
}

async function dlqKeys() {
  const consumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
  const keys: { key: string; headers: Record<string, string> }[] = [];
  const total = await topicSize(admin, config.pipeline.dlqTopic);
  await consumer.connect();
  await consumer.subscribe({ topic: config.pipeline.dlqTopic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      keys.push({
        key: String(message.key),
        headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
      });
    },
  });
  await until(async () => keys.length >= total, 30_000, 'the dead letter queue');
  await consumer.disconnect();
  return keys;
}

describe('poison messages written straight to the topic', () => {
  it('go to the dead letter queue with their error, while the valid rows around them land', async () => {
    const v1 = readAvsc(SCHEMA_FILE);
    const { id: v1Id } = await registry.register({ type: SchemaType.AVRO, schema: v1.text }, { subject: config.pipeline.subject });
    const wrongType = schemaOf([
      { name: 'id', type: 'long' },
      ts,
      { name: 'stock_price', type: 'string' },
      { name: 'sales_trend', type: 'double' },
    ]);
    const missing = schemaOf([{ name: 'id', type: 'long' }, ts, { name: 'stock_price', type: 'double' }]);
    const wrongTypeId = (
      await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(wrongType) }, { subject: uniqueName('poison-type-value') })
    ).id;
    const missingId = (
      await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(missing) }, { subject: uniqueName('poison-missing-value') })
    ).id;
    const valid = (id: number) => ({
      key: String(id),
      value: frame(v1Id, v1.type.toBuffer({ id, timestamp: Date.UTC(2024, 1, 1), stock_price: 10, sales_trend: 20 })),
    });
    const before = await topicSize(admin, config.pipeline.dlqTopic);

    await send([
      valid(FIRST_ID + 1),
      { key: 'poison-not-avro', value: Buffer.from('{"id": 1, "stock_price": "oops"}') },
      valid(FIRST_ID + 2),
      { key: 'poison-unknown-schema-id', value: frame(987_654, Buffer.from([2, 4, 6, 8])) },
      valid(FIRST_ID + 3),
      {
        key: 'poison-wrong-type',
        value: frame(
          wrongTypeId,
          avro.Type.forSchema(wrongType as avro.Schema).toBuffer({
            id: FIRST_ID + 90,
            timestamp: 0,
            stock_price: 'not a number',
            sales_trend: 1,
          }),
        ),
      },
      {
        key: 'poison-missing-field',
        value: frame(missingId, avro.Type.forSchema(missing as avro.Schema).toBuffer({ id: FIRST_ID + 91, timestamp: 0, stock_price: 1 })),
      },
      valid(FIRST_ID + 4),
    ]);
    await waitForSink();
    const landed = await db.query('select id::int from synthetic_data where id between $1 and $2 order by id', [FIRST_ID, FIRST_ID + 99]);
    expect(landed.rows.map((r) => r.id)).toEqual([FIRST_ID + 1, FIRST_ID + 2, FIRST_ID + 3, FIRST_ID + 4]);

    await until(async () => (await topicSize(admin, config.pipeline.dlqTopic)) >= before + 4, 30_000, 'four dead letters');
    const dead = (await dlqKeys()).filter((m) => m.key.startsWith('poison-'));
    for (const key of ['poison-not-avro', 'poison-unknown-schema-id', 'poison-wrong-type', 'poison-missing-field']) {
      const letter = dead.find((m) => m.key === key);
      expect(letter, key).toBeDefined();
      expect(letter!.headers['__connect.errors.topic']).toBe(config.pipeline.topic);
      expect(
        letter!.headers['__connect.errors.exception.message'] ?? letter!.headers['__connect.errors.exception.class.name'],
      ).toBeTruthy();
    }
    const status = await cli('status.mjs', [], {}, 60_000);
    expect(status.stdout).toMatch(new RegExp(`dead letter queue ${config.pipeline.dlqTopic.replace('.', '\\.')}\\s+([1-9]\\d*)`));
    // Dead letters are diverted rows: status says so, with the fix, and fails.
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(
      /problem: \d+ records? in the dead letter queue not replayed, oldest .* old \(.+\): fix the cause, then `npm run dlq:replay`/,
    );
  });
});

describe('bad rows in a Parquet file', () => {
  it('are quarantined and counted; duplicates and out-of-order rows land as upserts; the summaries stay a full recompute', async () => {
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 2].map((n) => String(FIRST_ID + 100 + n));
    const hour = Date.UTC(2024, 3, 1, 10);
    const file = path.join(dir, 'bad-values.parquet');
    writeDataset(
      {
        id: ids,
        // Out of order on purpose; the last row repeats id 2 with a later value.
        timestamp: Float64Array.from([
          hour + 5 * 60_000,
          hour,
          hour + 3 * 60_000,
          hour + 60_000,
          hour + 2 * 60_000,
          Date.UTC(2999, 0, 1),
          hour,
          hour,
          hour + 4 * 60_000,
        ]),
        stock_price: Float64Array.from([10, 20, Number.NaN, -5, 30, 40, Infinity, 50, 99]),
        sales_trend: Float64Array.from([1, 2, 3, 4, -1, 6, 7, 8, 9]),
      },
      file,
    );
    const rejectedBefore = await topicSize(admin, config.pipeline.rejectedTopic);
    const res = await dist('producer/cli.js', ['--file', file, '--restart']).done;
    expect(res.code, res.stderr).toBe(0);
    // NaN, negative price, negative sales, far future, Infinity: five quarantined, four sent.
    expect(res.stdout).toMatch(/done: read 9, sent 4, rejected 5/);
    expect((await topicSize(admin, config.pipeline.rejectedTopic)) - rejectedBefore).toBe(5);

    await waitForSink();
    const { rows } = await db.query('select id::int, stock_price from synthetic_data where id between $1 and $2 order by id', [
      FIRST_ID + 100,
      FIRST_ID + 199,
    ]);
    expect(rows).toEqual([
      { id: FIRST_ID + 101, stock_price: 10 },
      { id: FIRST_ID + 102, stock_price: 99 }, // the later duplicate wins
      { id: FIRST_ID + 108, stock_price: 50 },
    ]);
    await runEtl(config);
    expect(await summariesDifferFromRecompute(db)).toEqual(NO_DIFFERENCE);

    const status = await cli('status.mjs', [], {}, 60_000);
    expect(status.stdout).toMatch(/rejected rows synthetic_data\.rejected\s+[1-9]\d*/);
    // Rejected rows are diverted rows: status says so, with the ways out, and fails.
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/problem: \d+ rows? the producer rejected not replayed, oldest .* old \(.+\): correct them/);
  });

  it('a corrupt file ends in one line', async () => {
    const file = path.join(dir, 'garbage.parquet');
    fs.writeFileSync(file, Buffer.from('PAR1 this is not really parquet at all PAR1'));
    const res = await dist('producer/cli.js', ['--file', file, '--topic', uniqueName('garbage')]).done;
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^error: .*is not a readable Parquet file \(truncated or corrupt\?\)/);
  });
});

describe('schema evolution', () => {
  it('accepts a BACKWARD-compatible optional field, which lands once a migration adds its column', async () => {
    const v1 = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
    const v2 = { ...v1, fields: [...v1.fields, { name: 'volume', type: ['null', 'long'], default: null }] };
    // The registry accepts v2 for the pipeline's subject...
    const check = await fetch(`${config.registry.ccompatUrl}/compatibility/subjects/${config.pipeline.subject}/versions/latest`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(v2) }),
    });
    expect(check.status).toBe(200);
    expect((await check.json()).is_compatible).toBe(true);
    // ...and it is registered under a subject of the test's own, so the pipeline's
    // latest version stays v1: the sink finds any schema by its id either way.
    const { id: v2Id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(v2) },
      { subject: uniqueName('evolution-v2-value') },
    );
    const type = avro.Type.forSchema(v2);
    const row = (id: number, volume: number) => ({
      key: String(id),
      value: frame(v2Id, type.toBuffer({ id, timestamp: Date.UTC(2024, 2, 3), stock_price: 1, sales_trend: 2, volume })),
    });
    const sink = connectorFiles(config).find((c) => c.name === config.sink.connector)!;
    try {
      // Before the migration: the row lands, its new field waits in Kafka.
      await send([row(FIRST_ID + 201, 7)]);
      await waitForSink();
      expect((await db.query('select count(*)::int as n from synthetic_data where id = $1', [FIRST_ID + 201])).rows[0].n).toBe(1);

      // The migration: a column, and the connector's column list naming it.
      await db.query('alter table synthetic_data add column volume bigint');
      await db.query('grant update (volume), insert (volume) on synthetic_data to pipeline_sink');
      const body = { ...sink.body, 'transforms.columns.include': `${sink.body['transforms.columns.include']},volume` };
      expect((await connectApi(config, 'PUT', `/connectors/${config.sink.connector}/config`, body)).status).toBe(200);
      // Tasks pick up the new config as they restart; until then a row may
      // still land without the field. Upserts make sending it again harmless.
      let lastSend = 0;
      await until(
        async () => {
          if (Date.now() - lastSend > 5000) {
            lastSend = Date.now();
            await send([row(FIRST_ID + 202, 42)]);
          }
          return (await db.query('select volume from synthetic_data where id = $1', [FIRST_ID + 202])).rows[0]?.volume === '42';
        },
        90_000,
        'the new field in its column',
      );
    } finally {
      expect((await connectApi(config, 'PUT', `/connectors/${config.sink.connector}/config`, sink.body)).status).toBe(200);
      await db.query('alter table synthetic_data drop column if exists volume');
    }
  }, 240_000);

  it('refuses an incompatible change, and the producer says so in one line', async () => {
    const topic = uniqueName('evolution');
    const first = await dist('producer/cli.js', ['--file', 'producer/fixtures/pandas_ns_snappy.parquet', '--topic', topic]).done;
    expect(first.code, first.stderr).toBe(0);
    const v1 = JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8'));
    // A new field without a default: readers of the new schema cannot read old records.
    const incompatible = { ...v1, fields: [...v1.fields, { name: 'volume', type: 'long' }] };
    const file = path.join(dir, 'incompatible.avsc');
    fs.writeFileSync(file, JSON.stringify(incompatible));
    const res = await dist('producer/cli.js', [
      '--file',
      'producer/fixtures/pandas_ns_snappy.parquet',
      '--topic',
      topic,
      '--schema',
      file,
      '--restart',
    ]).done;
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(
      new RegExp(`^error: the registry refused the schema for subject ${topic}-value: it is not BACKWARD compatible`),
    );

    // Dropping a field passes BACKWARD, but every record would be dead-lettered: refused before sending.
    const dropped = { ...v1, fields: v1.fields.filter((f: { name: string }) => f.name !== 'sales_trend') };
    const droppedFile = path.join(dir, 'dropped.avsc');
    fs.writeFileSync(droppedFile, JSON.stringify(dropped));
    const before = await topicSize(admin, topic);
    const refused = await dist('producer/cli.js', [
      '--file',
      'producer/fixtures/pandas_ns_snappy.parquet',
      '--topic',
      topic,
      '--schema',
      droppedFile,
      '--restart',
    ]).done;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^error: .*dropped\.avsc: the schema lacks the field sales_trend, which the sink writes into synthetic_data/m,
    );
    expect(await topicSize(admin, topic)).toBe(before);
  });
});

describe('least privilege and secrets', () => {
  it('every service listens on 127.0.0.1 only', () => {
    const pids = new Set(ourPids(config).map(String));
    const out = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8' }).stdout;
    const ours = out.split('\n').filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((m) => pids.has(m[1])));
    expect(ours.length).toBeGreaterThanOrEqual(6);
    for (const line of ours) {
      const local = line.trim().split(/\s+/)[3];
      expect(local, line).toMatch(/^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):\d+$/);
    }
  });

  it('the sink role cannot read or change anything but synthetic_data; the reporting role cannot write', async () => {
    const sink = roleClient(config, 'sink');
    await sink.connect();
    try {
      await expect(sink.query('select * from stock_price_summary limit 1')).rejects.toThrow(/permission denied/);
      await expect(sink.query('delete from synthetic_data where id = -1')).rejects.toThrow(/permission denied/);
      await expect(sink.query('select * from etl.touched_buckets limit 1')).rejects.toThrow(/permission denied/);
      await expect(sink.query('select * from pgmigrations limit 1')).rejects.toThrow(/permission denied/);
      await expect(sink.query('call etl.refresh_summaries()')).rejects.toThrow(/permission denied/);
    } finally {
      await sink.end();
    }
    const reader = roleClient(config, 'reader');
    await reader.connect();
    try {
      await expect(
        reader.query('insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values (-1, now(), 1, 1)'),
      ).rejects.toThrow(/permission denied/);
      // The summaries are views over the ETL's stored buckets: neither can be written.
      await expect(reader.query('delete from sales_trend_summary')).rejects.toThrow(/cannot delete from view/);
      await expect(reader.query('truncate stock_price_summary')).rejects.toThrow(/is not a table/);
      await expect(reader.query('delete from etl.stock_price_buckets')).rejects.toThrow(/permission denied/);
    } finally {
      await reader.end();
    }
    const registryRole = pgClient(config, config.pg.database, { user: config.registry.user, password: pgPassword(config, 'registry') });
    await expect(registryRole.connect()).rejects.toThrow(/permission denied for database/);
    await registryRole.end().catch(() => {});
  });

  it("a connector config can resolve only the project's own variables and secrets folder, whoever PUTs it", async () => {
    const resolved = async (value: string) => {
      const { json } = await connectApi(config, 'PUT', '/connector-plugins/io.debezium.connector.jdbc.JdbcSinkConnector/config/validate', {
        'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
        name: 'probe',
        topics: value,
      });
      return json.configs.find((c: { value: { name: string } }) => c.value.name === 'topics').value.value;
    };
    // A file outside the secrets folder, a variable outside the list: the placeholder comes back as text.
    const envFile = `\${file:${path.join(config.root, '.env')}:PG_ADMIN_PASSWORD}`;
    expect(await resolved(envFile)).toBe(envFile);
    const home = ['$', '{env:HOME}'].join('');
    expect(await resolved(home)).toBe(home);
    expect(await resolved(['$', '{env:TOPIC}'].join(''))).toBe(config.pipeline.topic);
    // Nor may a connector reconfigure its clients beyond batch tuning.
    const sink = connectorFiles(config).find((c) => c.name === config.sink.connector)!;
    const { status, json } = await connectApi(config, 'PUT', '/connectors/probe-override/config', {
      ...sink.body,
      'consumer.override.bootstrap.servers': 'elsewhere:9092',
    });
    expect(status, JSON.stringify(json)).toBe(400);
    expect(json.message).toMatch(/bootstrap\.servers/);
  });

  it('no password appears in connector JSON, in Connect REST answers, or in any log the project writes', async () => {
    const secrets = (['admin', 'registry', 'sink', 'etl', 'reader'] as const).map((who) => pgPassword(config, who) as string);
    secrets.push(connectIdentity(config)!.password);
    const texts: [string, string][] = [];
    for (const { file } of connectorFiles(config)) texts.push([file, fs.readFileSync(file, 'utf8')]);
    for (const route of [
      `/connectors/${config.sink.connector}`,
      `/connectors/${config.sink.connector}/config`,
      `/connectors/${config.sink.connector}/status`,
      `/connectors/${config.sink.connector}/tasks`,
      '/connectors?expand=info&expand=status',
    ]) {
      texts.push([route, JSON.stringify((await connectApi(config, 'GET', route)).json)]);
    }
    for (const name of fs.readdirSync(config.logDir)) texts.push([name, fs.readFileSync(path.join(config.logDir, name), 'utf8')]);
    expect(texts.length).toBeGreaterThan(8);
    for (const [where, text] of texts) {
      for (const secret of secrets) expect(text.includes(secret), `${secret} in ${where}`).toBe(false);
    }
  });
});
