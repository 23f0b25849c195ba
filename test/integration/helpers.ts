import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '#lib/config.mjs';

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
 * The invariant: each summary table equals a full recompute from the raw
 * table (the etl.*_rollup views), bucket for bucket.
 */
export async function summariesDifferFromRecompute(db: {
  query: (sql: string) => Promise<{ rows: { extra: number; missing: number }[] }>;
}) {
  const out: Record<string, { extra: number; missing: number }> = {};
  for (const [table, view, value] of [
    ['stock_price_summary', 'etl.stock_price_rollup', 'stock_price'],
    ['sales_trend_summary', 'etl.sales_trend_rollup', 'sales_trend'],
  ]) {
    const cols = `interval_start, interval_end, min_${value}, max_${value}, first_${value}, last_${value}, sample_count, round(avg_${value}::numeric, 9)`;
    const {
      rows: [diff],
    } = await db.query(`select
      (select count(*) from (select ${cols} from ${table} except select ${cols} from ${view}) a)::int as extra,
      (select count(*) from (select ${cols} from ${view} except select ${cols} from ${table}) b)::int as missing`);
    out[table] = diff;
  }
  return out;
}

export const NO_DIFFERENCE = {
  stock_price_summary: { extra: 0, missing: 0 },
  sales_trend_summary: { extra: 0, missing: 0 },
};
