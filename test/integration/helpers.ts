import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { ROOT, config } from '#lib/config.mjs';
import { connectorFiles } from '../../ops/connectors.mjs';
import { migrate } from '../../ops/migrate.mjs';
import { up } from '../../platform/lifecycle.mjs';
import { openParquet, readRowGroups } from '../../producer/parquet.js';

export const uniqueName = (prefix: string) => `${prefix}-${crypto.randomBytes(6).toString('hex')}`;

export interface CliResult {
  code: number | null;
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node scripts/<script> ...args` as a user would, with extra environment. */
export function cli(script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<CliResult> {
  return run(path.join(ROOT, 'scripts', script), args, env, timeoutMs).done;
}

/** Runs a built CLI from dist/ (`npm run produce` and `generate` run these). */
export function dist(script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000) {
  return run(path.join(ROOT, 'dist', script), args, env, timeoutMs);
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  let child!: ReturnType<typeof spawn>;
  const done = new Promise<CliResult>((resolve, reject) => {
    child = spawn(process.execPath, [file, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(file)} ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/** The platform up, migrated, the connectors applied and running: where the sink tests start. */
export async function pipelineReady() {
  await up(config, { log: () => {} });
  await migrate(config);
  const applied = await cli('connectors.mjs', [], {}, 120_000);
  expect(applied.code, applied.stderr).toBe(0);
}

export function tempDir(prefix: string) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kpp-${prefix}-`));
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Every message of a topic from the beginning, until `count` have arrived. */
export async function consumeAll(brokers: string[], topic: string, count: number, timeoutMs = 60_000) {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const kafka = new Kafka({ clientId: 'test-consumer', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('test-consume') });
  const messages: { key: Buffer | null; value: Buffer | null; partition: number; headers: Record<string, unknown> }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) messages.push({ key: m.key, value: m.value, partition: batch.partition, headers: m.headers ?? {} });
      },
    });
    await until(async () => messages.length >= count, timeoutMs, `${count} messages on ${topic}`);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** The end offset of each partition of a topic, in partition order. */
export async function partitionEnds(brokers: string[], topic: string) {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const admin = new Kafka({ clientId: 'test-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.sort((a, b) => a.partition - b.partition).map((p) => Number(p.high));
  } finally {
    await admin.disconnect();
  }
}

export async function endOffsetSum(brokers: string[], topic: string) {
  return (await partitionEnds(brokers, topic)).reduce((sum, n) => sum + n, 0);
}

/**
 * The invariant: each summary (a view: stored buckets plus the ones touched
 * since, computed at query time) equals a full recompute from the raw table
 * (the etl.*_rollup views), bucket for bucket. Averages compared to 9
 * decimals, or, with `exact`, to the bit and row for row (EXCEPT ALL).
 */
export async function summariesDifferFromRecompute(
  db: { query: (sql: string) => Promise<{ rows: { extra: number; missing: number }[] }> },
  { exact = false } = {},
) {
  const except = exact ? 'except all' : 'except';
  const out: Record<string, { extra: number; missing: number }> = {};
  for (const [table, view, value] of [
    ['stock_price_summary', 'etl.stock_price_rollup', 'stock_price'],
    ['sales_trend_summary', 'etl.sales_trend_rollup', 'sales_trend'],
  ]) {
    const avg = exact ? `avg_${value}` : `round(avg_${value}::numeric, 9)`;
    const cols = `interval_start, interval_end, min_${value}, max_${value}, first_${value}, last_${value}, sample_count, ${avg}`;
    const {
      rows: [diff],
    } = await db.query(`select
      (select count(*) from (select ${cols} from ${table} ${except} select ${cols} from ${view}) a)::int as extra,
      (select count(*) from (select ${cols} from ${view} ${except} select ${cols} from ${table}) b)::int as missing`);
    out[table] = diff;
  }
  return out;
}

/** The sink's tasks, as its connector file asks. */
export const SINK_TASKS = Number(connectorFiles(config).find((c) => c.name === config.sink.connector)?.body['tasks.max']);

export const NO_DIFFERENCE = {
  stock_price_summary: { extra: 0, missing: 0 },
  sales_trend_summary: { extra: 0, missing: 0 },
};

export interface Row {
  id: number;
  ts: number;
  stock: number;
  sales: number;
}

/** Every row of a Parquet file, as the producer reads it. */
export async function readDataset(file: string): Promise<Row[]> {
  const source = await openParquet(file);
  const out: Row[] = [];
  for await (const group of readRowGroups(source, file)) {
    const c = group.columns;
    for (let i = 0; i < group.rows; i++) {
      out.push({ id: Number(c.id[i]), ts: Number(c.timestamp[i]), stock: Number(c.stock_price[i]), sales: Number(c.sales_trend[i]) });
    }
  }
  return out;
}

/** Order-independent checksums that tie each id to its values: cents are exact in integers. */
export function expectedChecksums(data: Row[]) {
  let ids = 0n;
  let ms = 0n;
  let stockCents = 0n;
  let salesCents = 0n;
  let idStock = 0n;
  let idSales = 0n;
  for (const r of data) {
    const s = BigInt(Math.round(r.stock * 100));
    const t = BigInt(Math.round(r.sales * 100));
    ids += BigInt(r.id);
    ms += BigInt(r.ts);
    stockCents += s;
    salesCents += t;
    idStock += BigInt(r.id) * s;
    idSales += BigInt(r.id) * t;
  }
  return {
    rows: String(data.length),
    distinct_ids: String(new Set(data.map((r) => r.id)).size),
    ids: String(ids),
    ms: String(ms),
    stock_cents: String(stockCents),
    sales_cents: String(salesCents),
    id_stock: String(idStock),
    id_sales: String(idSales),
  };
}

/** The same checksums of the table's rows with ids up to 527,040. */
export async function tableChecksums(db: { query: (sql: string) => Promise<{ rows: Record<string, string>[] }> }) {
  const {
    rows: [r],
  } = await db.query(`
    select
      count(*)::text as rows,
      count(distinct id)::text as distinct_ids,
      sum(id)::text as ids,
      sum((extract(epoch from "timestamp") * 1000)::bigint)::text as ms,
      sum(round(stock_price * 100)::bigint)::text as stock_cents,
      sum(round(sales_trend * 100)::bigint)::text as sales_cents,
      sum(id::numeric * round(stock_price * 100)::bigint)::text as id_stock,
      sum(id::numeric * round(sales_trend * 100)::bigint)::text as id_sales
    from synthetic_data where id <= 527040`);
  return r;
}
