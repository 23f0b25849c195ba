#!/usr/bin/env node
// npm run bench: throughput and latency of the pipeline, against the original
// demo's design and against the machine's limits, in one run on this machine.
// Prints a table, writes bench/results/latest.json and a dated copy.
//
// It empties the pipeline's topic and tables twice (and leaves the full year
// loaded, as `npm start` would). Figures, not assertions: compare ratios.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { $ } from 'zx';
import kafkajs from 'kafkajs';
import copyStreams from 'pg-copy-streams';
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { createKafka, kafkaClient } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { runEtl } from '../ops/etl.mjs';
import { migrate } from '../ops/migrate.mjs';
import { up } from '../platform/lifecycle.mjs';
import { etlTimes, percentile, resetPipeline, waitLoaded } from './lib.mjs';
import { serviceCpu } from './cpu.mjs';
import { demoBaseline } from './demo-design.mjs';
import { pythonBaseline } from './demo-python.mjs';

$.verbose = false;
const RT_RATE = Number(process.env.BENCH_RT_RATE ?? 2000);
const RT_SECONDS = Number(process.env.BENCH_RT_SECONDS ?? 60);
const DEMO_ROWS = Number(process.env.BENCH_DEMO_ROWS ?? 3000);
const log = (line) => console.error(`[bench] ${line}`);
const s = (ms) => ms / 1000;
const results = {
  machine: machine(),
  startedAt: new Date().toISOString(),
  config: {
    rtRate: RT_RATE,
    rtSeconds: RT_SECONDS,
    demoRows: DEMO_ROWS,
    partitions: config.pipeline.partitions,
    compression: config.producer.compression,
  },
};

await up(config, { log });
await migrate(config);
await $`npm run -s build`;
if (!fs.existsSync(config.datasetFile)) await $`node dist/dataset/generate-cli.js --out ${config.datasetFile}`;
const { rows: datasetRows } = await readRows(config.datasetFile);

// 1. Real time: a fixed rate into an empty pipeline; latency from the Kafka
// record timestamp to the row in PostgreSQL, and how far the summaries lag.
log(`real time: ${RT_RATE} rows/s for ${RT_SECONDS} s`);
await resetPipeline(config);
results.realTime = await realTime();

// 2. Batch: the full year into an empty pipeline.
log('batch: the full year');
await resetPipeline(config);
results.batch = await batch();

// 3. ETL on the loaded table.
log('etl');
results.etl = await etlTimes(config, Number(process.env.BENCH_RUNS ?? 5));

// 4. Baselines: the original design, and the machine's limits.
log(`baseline: the original demo's design on ${DEMO_ROWS} rows`);
results.demo = await demoBaseline(config, datasetRows.slice(0, DEMO_ROWS));
log(`baseline: the original design in Python (pandas, kafka-python, psycopg2) on ${DEMO_ROWS} rows`);
results.demoPython = pythonBaseline(config, DEMO_ROWS, log);
log('baseline: COPY into a scratch table');
results.copy = await copyBaseline(datasetRows);
log('baseline: bare produce of pre-encoded messages');
results.bareProduce = await bareProduce(datasetRows);

// 5. Ratios.
results.ratios = {
  endToEndOverDemo: results.batch.endToEndRowsPerSecond / results.demo.endToEndRowsPerSecond,
  endToEndOverDemoPython:
    'endToEndRowsPerSecond' in results.demoPython ? results.batch.endToEndRowsPerSecond / results.demoPython.endToEndRowsPerSecond : null,
  endToEndTimeOverCopy: results.batch.producerStartToLastRowSeconds / results.copy.seconds,
};

print(results);
const dir = path.join(config.root, 'bench', 'results');
fs.mkdirSync(dir, { recursive: true });
const json = JSON.stringify(results, null, 2);
fs.writeFileSync(path.join(dir, 'latest.json'), json);
fs.writeFileSync(path.join(dir, `${results.startedAt.replace(/[:.]/g, '-')}.json`), json);
log(`written to ${path.relative(process.cwd(), path.join(dir, 'latest.json'))}`);

async function batch() {
  const cpuBefore = serviceCpu(config);
  const t0 = Date.now();
  const out = await $({ quiet: true })`node --max-old-space-size=96 dist/producer/cli.js --restart`;
  const producerEnd = Date.now();
  const produced = parseSummary(out.stdout);
  const landed = await waitLoaded(config, 527_040);
  const cpuAfter = serviceCpu(config);
  // CPU per row of each process over the load (the ETL's first run excluded).
  /** @type {Record<string, number>} */
  const cpuMicrosPerRow = { producer: (produced.cpuSeconds * 1e6) / landed.rows };
  for (const kind of Object.keys(cpuAfter)) {
    if (kind !== 'producer') cpuMicrosPerRow[kind] = ((cpuAfter[kind] - cpuBefore[kind]) * 1e6) / landed.rows;
  }
  cpuMicrosPerRow.all = Object.values(cpuMicrosPerRow).reduce((a, b) => a + b, 0);
  const etlStart = Date.now();
  const etl = await runEtl(config);
  return {
    rows: landed.rows,
    producerRowsPerSecond: produced.rowsPerSecond,
    producerPeakRssMb: produced.peakRssMb,
    cpuMicrosPerRow,
    sinkRowsPerSecond: landed.rows / s(landed.last - landed.first),
    producerStartToLastRowSeconds: s(landed.last - t0),
    endToEndRowsPerSecond: landed.rows / s(landed.last - t0),
    stages: {
      produceSeconds: s(producerEnd - t0),
      landAfterProducerSeconds: s(Math.max(0, landed.last - producerEnd)),
      firstEtlSeconds: s(Date.now() - etlStart),
      firstEtlBuckets: etl.stockBuckets + etl.salesBuckets,
    },
  };
}

async function realTime() {
  const limit = RT_RATE * RT_SECONDS;
  const db = pgClient(config);
  await db.connect();
  const lags = [];
  const queryMs = [];
  let running = true;
  // Every second: is the newest landed row in stock_price_summary yet? Its
  // bucket's count there against the raw rows', in one snapshot; if short,
  // the lag is how long the oldest row of that bucket the summary does not
  // show has waited. Cheap (by index), so it does not load what it measures.
  const sampler = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 1000));
      const newest = await db.query('select etl.bucket_10m("timestamp") as b from synthetic_data order by id desc limit 1');
      if (!newest.rows.length) continue;
      const {
        rows: [r],
      } = await db.query(
        `with shown as (select sample_count, refreshed_at from stock_price_summary where interval_start = $1)
         select (select count(*) from synthetic_data where "timestamp" >= $1 and "timestamp" < $1 + interval '10 minutes') as n,
                (select sample_count from shown) as shown,
                (select extract(epoch from statement_timestamp() - min(ingested_at)) from synthetic_data
                  where "timestamp" >= $1 and "timestamp" < $1 + interval '10 minutes'
                    and ingested_at > coalesce((select refreshed_at from shown), '-infinity')) as waited`,
        [newest.rows[0].b],
      );
      const lagSeconds = Number(r.shown) === Number(r.n) ? 0 : Math.max(0, Number(r.waited));
      lags.push(lagSeconds);
    }
  })();
  const t0 = Date.now();
  const out = await $({ quiet: true })`node --max-old-space-size=96 dist/producer/cli.js --restart --rate ${RT_RATE} --limit ${limit}`;
  running = false;
  await sampler;
  const produced = parseSummary(out.stdout);
  await waitLoaded(config, limit);
  // What reading both summaries whole costs with the buckets touched since the
  // minute's refresh computed at query time: after the load, not during it
  // (each read is CPU the sink would wait for).
  const pending = Number((await db.query('select count(distinct bucket_start)::int as n from etl.touched_buckets')).rows[0].n);
  for (let i = 0; i < 3; i++) {
    const q0 = performance.now();
    await db.query('select count(*), sum(sample_count) from stock_price_summary');
    await db.query('select count(*), sum(sample_count) from sales_trend_summary');
    queryMs.push(performance.now() - q0);
  }
  const {
    rows: [lat],
  } = await db.query(`
    select count(*)::int as n,
           percentile_cont(array[0.5, 0.95, 0.99]) within group (order by extract(epoch from ingested_at - kafka_timestamp)) as p,
           max(extract(epoch from ingested_at - kafka_timestamp)) as max
    from synthetic_data`);
  await db.end();
  return {
    rows: lat.n,
    targetRowsPerSecond: RT_RATE,
    achievedRowsPerSecond: produced.rowsPerSecond,
    seconds: s(Date.now() - t0),
    latencySeconds: { p50: lat.p[0], p95: lat.p[1], p99: lat.p[2], max: Number(lat.max) },
    summaryLag: {
      note: "every second: 0 when stock_price_summary shows every row of the newest row's bucket, else how long the oldest row it does not show had waited",
      secondsP50: percentile(lags, 0.5),
      secondsP99: percentile(lags, 0.99),
      secondsMax: percentile(lags, 1),
      samples: lags.length,
    },
    summaryReadMs: {
      note: 'select count(*), sum(sample_count) from each summary view, both, three times after the load, with pendingBuckets touched since the last refresh computed at query time',
      pendingBuckets: pending,
      median: percentile(queryMs, 0.5),
      max: percentile(queryMs, 1),
    },
  };
}

async function copyBaseline(rows) {
  const db = pgClient(config);
  await db.connect();
  try {
    await db.query('create schema if not exists bench');
    await db.query('drop table if exists bench.copy_target');
    // The real table's shape (keys and indexes), not its triggers.
    await db.query(
      'create table bench.copy_target (like public.synthetic_data including defaults including constraints including indexes)',
    );
    const csv = rows.map((r) => `${r.id},${new Date(r.ts).toISOString()},${r.stock},${r.sales}`).join('\n');
    const t0 = performance.now();
    await pipeline(
      Readable.from([csv]),
      db.query(copyStreams.from('copy bench.copy_target (id, "timestamp", stock_price, sales_trend) from stdin (format csv)')),
    );
    const seconds = s(performance.now() - t0);
    await db.query('drop table bench.copy_target');
    await db.query('drop schema bench');
    return { rows: rows.length, seconds, rowsPerSecond: rows.length / seconds };
  } finally {
    await db.end();
  }
}

async function bareProduce(rows) {
  const kafka = createKafka(kafkaClient(config, 'producer'), { clientId: 'bench-bare' });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench-bare-${Date.now()}`;
  const P = config.pipeline.partitions;
  await admin.createTopics({ topics: [{ topic, numPartitions: P }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  await producer.connect();
  // Pre-encoded: a 33-byte value like our Avro records, keyed by id, split by partition.
  const value = Buffer.alloc(33, 7);
  const lanes = Array.from({ length: P }, () => []);
  rows.forEach((r, i) => {
    lanes[i % P].push({ key: String(r.id), value, partition: i % P });
  });
  const compression = config.producer.compression === 'gzip' ? kafkajs.CompressionTypes.GZIP : kafkajs.CompressionTypes.None;
  const t0 = performance.now();
  await Promise.all(
    lanes.map(async (lane) => {
      for (let i = 0; i < lane.length; i += config.producer.batchMessages) {
        await producer.send({ topic, messages: lane.slice(i, i + config.producer.batchMessages), acks: -1, compression });
      }
    }),
  );
  const seconds = s(performance.now() - t0);
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  return { rows: rows.length, seconds, rowsPerSecond: rows.length / seconds };
}

async function readRows(file) {
  const { openParquet, readRowGroups } = await import('../dist/producer/parquet.js');
  const source = await openParquet(file);
  const rows = [];
  for await (const g of readRowGroups(source, file)) {
    for (let i = 0; i < g.rows; i++) {
      rows.push({
        id: Number(g.columns.id[i]),
        ts: Number(g.columns.timestamp[i]),
        stock: Number(g.columns.stock_price[i]),
        sales: Number(g.columns.sales_trend[i]),
      });
    }
  }
  return { rows };
}

function parseSummary(stdout) {
  const m = /sent ([\d,]+), .* ([\d,]+) rows\/s, peak RSS (\d+) MB, CPU ([\d.]+) s/.exec(stdout);
  if (!m) throw new Error(`unexpected producer output: ${stdout}`);
  return {
    sent: Number(m[1].replace(/,/g, '')),
    rowsPerSecond: Number(m[2].replace(/,/g, '')),
    peakRssMb: Number(m[3]),
    cpuSeconds: Number(m[4]),
  };
}

function machine() {
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  };
}

function print(r) {
  const n = (x, d = 0) =>
    x === null || x === undefined ? '-' : Number(x).toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
  const rows = [
    ['batch', 'producer', `${n(r.batch.producerRowsPerSecond)} rows/s`, `peak RSS ${r.batch.producerPeakRssMb} MB`],
    ['batch', 'sink (first to last row landed)', `${n(r.batch.sinkRowsPerSecond)} rows/s`, ''],
    [
      'batch',
      'producer start to last row in PostgreSQL',
      `${n(r.batch.producerStartToLastRowSeconds, 1)} s`,
      `${n(r.batch.endToEndRowsPerSecond)} rows/s end to end`,
    ],
    [
      'batch',
      'CPU per row (µs, from /proc)',
      Object.entries(r.batch.cpuMicrosPerRow)
        .filter(([k]) => k !== 'all')
        .map(([k, v]) => `${k} ${n(v, 1)}`)
        .join(', '),
      `all ${n(r.batch.cpuMicrosPerRow.all, 1)} µs/row`,
    ],
    [
      'batch',
      'stages',
      `produce ${n(r.batch.stages.produceSeconds, 1)} s`,
      `land after it ${n(r.batch.stages.landAfterProducerSeconds, 1)} s, first ETL ${n(r.batch.stages.firstEtlSeconds, 1)} s`,
    ],
    [
      'real time',
      `${n(r.realTime.targetRowsPerSecond)} rows/s for ${RT_SECONDS} s`,
      `${n(r.realTime.achievedRowsPerSecond)} rows/s sent`,
      `${n(r.realTime.rows)} rows`,
    ],
    [
      'real time',
      'latency Kafka record to PostgreSQL',
      `p50 ${n(r.realTime.latencySeconds.p50 * 1000)} ms, p95 ${n(r.realTime.latencySeconds.p95 * 1000)} ms`,
      `p99 ${n(r.realTime.latencySeconds.p99 * 1000)} ms, max ${n(r.realTime.latencySeconds.max * 1000)} ms`,
    ],
    [
      'real time',
      'summary lag behind raw rows (every second)',
      `p50 ${n(r.realTime.summaryLag.secondsP50, 1)} s, p99 ${n(r.realTime.summaryLag.secondsP99, 1)} s`,
      `max ${n(r.realTime.summaryLag.secondsMax, 1)} s, ${r.realTime.summaryLag.samples} samples`,
    ],
    [
      'real time',
      'reading both summaries whole (views), after the load',
      `median ${n(r.realTime.summaryReadMs.median, 1)} ms, max ${n(r.realTime.summaryReadMs.max, 1)} ms`,
      `${n(r.realTime.summaryReadMs.pendingBuckets)} buckets computed at query time`,
    ],
    ['etl', 'full rebuild', `${n(r.etl.fullMs, 1)} ms`, ''],
    ['etl', 'incremental after 1 minute / 1 hour of rows', `${n(r.etl.minuteMs, 1)} ms`, `${n(r.etl.hourMs, 1)} ms`],
    [
      'baseline',
      `original design rebuilt in TypeScript (JSON, flush per message, insert+commit per row; ${n(r.demo.rows)} rows)`,
      `${n(r.demo.endToEndRowsPerSecond)} rows/s end to end`,
      `producer alone ${n(r.demo.producerRowsPerSecond)} rows/s`,
    ],
    'endToEndRowsPerSecond' in r.demoPython
      ? [
          'baseline',
          `original design in Python (pandas, kafka-python, psycopg2; ${n(r.demoPython.rows)} rows)`,
          `${n(r.demoPython.endToEndRowsPerSecond)} rows/s end to end`,
          `producer alone ${n(r.demoPython.producerRowsPerSecond)} rows/s`,
        ]
      : ['baseline', 'original design in Python', 'skipped', r.demoPython.skipped],
    ['baseline', 'COPY into a scratch table (the full year)', `${n(r.copy.rowsPerSecond)} rows/s`, `${n(r.copy.seconds, 2)} s`],
    ['baseline', 'bare produce of pre-encoded messages', `${n(r.bareProduce.rowsPerSecond)} rows/s`, `${n(r.bareProduce.seconds, 2)} s`],
    ['ratio', 'our end-to-end rate / original design in TypeScript', `${n(r.ratios.endToEndOverDemo, 1)}x`, 'aim: 50x or more'],
    ['ratio', 'our end-to-end rate / original design in Python', `${n(r.ratios.endToEndOverDemoPython, 1)}x`, ''],
    ['ratio', 'our end-to-end time / COPY time', `${n(r.ratios.endToEndTimeOverCopy, 1)}x`, 'aim: 4x or less'],
    ['aim', 'p99 real-time latency', `${n(r.realTime.latencySeconds.p99 * 1000)} ms`, 'aim: 100 ms or less'],
    ['aim', 'p99 summary lag', `${n(r.realTime.summaryLag.secondsP99, 1)} s`, 'aim: 5 s or less'],
    ['aim', 'CPU per row, all processes', `${n(r.batch.cpuMicrosPerRow.all, 1)} µs`, 'aim: 28 µs or less'],
    ['aim', 'ETL full rebuild', `${n(r.etl.fullMs, 1)} ms`, 'aim: 400 ms or less'],
    ['aim', 'producer peak RSS', `${r.batch.producerPeakRssMb} MB`, 'aim: 150 MB or less'],
  ];
  console.log(
    `\nkafka-pg-pipeline benchmark, ${r.startedAt}, ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGb} GB, node ${r.machine.node}`,
  );
  console.log(table(['part', 'what', 'figure', ''], rows));
}
