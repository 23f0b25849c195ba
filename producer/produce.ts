// Streams a Parquet file into Kafka as Avro: read a row group, validate,
// encode, send over one lane per partition, checkpoint what Kafka acknowledged.
import fs from 'node:fs';
import path from 'node:path';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import type { Message, Producer } from 'kafkajs';
import { SCHEMA_FILE, readAvsc } from './avro.js';
import { checkpointFile, loadCheckpoint, resumePoint, saveCheckpoint } from './checkpoint.js';
import type { Checkpoint } from './checkpoint.js';
import { chunkRowsFor, waitMs } from './pacing.js';
import type { Pace } from './pacing.js';
import { COLUMNS, openParquet, readRowGroups } from './parquet.js';
import { partitionFor } from './partition.js';
import type { RowGroup } from './parquet.js';
import { createProgress, formatRate } from './progress.js';
import { validateRow } from './validate.js';
import type { RawRow } from './validate.js';
import { frame } from './wire.js';

const { CompressionTypes, Kafka, Partitioners, logLevel } = kafkajs;

export class ProduceError extends Error {}

export interface ProduceOptions {
  file: string;
  brokers: string[];
  registryUrl: string;
  topic: string;
  rejectedTopic: string;
  subject: string;
  partitions: number;
  runDir: string;
  pace?: Pace;
  limit?: number;
  fromId?: number;
  restart?: boolean;
  compression: string;
  chunkRows: number;
  batchMessages: number;
  schemaFile?: string;
  /** Lines for the user (stderr by the CLI). */
  log?: (line: string) => void;
  progress?: boolean;
  signal?: AbortSignal;
}

export interface Summary {
  file: string;
  rowsInFile: number;
  startRow: number;
  read: number;
  sent: number;
  rejected: number;
  skipped: number;
  seconds: number;
  rowsPerSecond: number;
  /** Peak resident memory of this process so far, MB. */
  peakRssMb: number;
  schemaId: number;
  stopped: boolean;
  complete: boolean;
}

// Chunks in flight at once: enough to keep every lane busy while the next
// chunk is encoded, few enough to bound memory (each in-flight message holds
// two Buffers until Kafka acknowledges it).
const MAX_CHUNKS_IN_FLIGHT = 3;
const STALL_WARNING_MS = 30_000;

export async function produce(opts: ProduceOptions): Promise<Summary> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const pace = opts.pace ?? { mode: 'max' };
  const file = path.resolve(opts.file);
  const source = await openParquet(file);
  const stat = fs.statSync(file);

  const { type, text: schemaText } = readAvsc(opts.schemaFile ?? SCHEMA_FILE);
  const schemaId = await registerSchema(opts.registryUrl, opts.subject, schemaText);

  const kafka = new Kafka({
    clientId: 'kafka-pg-pipeline-producer',
    brokers: opts.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, log: entry }) => log(`kafka ${namespace}: ${entry.message}`),
    connectionTimeout: 3000,
    // Reconnects (metadata, the broker coming back) keep trying for about five
    // minutes: a broker restart must not end the run. Sends themselves retry
    // without end (idempotent producer); the stall warning says what is going on.
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 30 },
  });
  const admin = kafka.admin({ retry: { retries: 2 } });
  try {
    await admin.connect();
  } catch (err) {
    throw new ProduceError(`Kafka is not reachable at ${opts.brokers.join(',')} (${(err as Error).message}): start it with \`npm run platform:up\``);
  }
  let producer: Producer | undefined;
  try {
    const partitions = await ensureTopic(admin, opts.topic, opts.partitions);
    await ensureTopic(admin, opts.rejectedTopic, 1);
    producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();

    const cpFile = checkpointFile(opts.runDir, file, opts.topic);
    const resume = resumePoint(loadCheckpoint(cpFile), { file, size: stat.size, mtimeMs: stat.mtimeMs }, opts.topic, Boolean(opts.restart));
    if (resume.note) log(resume.note);

    return await stream({
      ...opts, file, log, pace, source, schemaId, partitions, producer, cpFile,
      startRow: resume.row,
      encode: (record) => frame(schemaId, type.toBuffer(record)),
      identity: { file, size: stat.size, mtimeMs: stat.mtimeMs },
    });
  } finally {
    await producer?.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

async function registerSchema(url: string, subject: string, schema: string): Promise<number> {
  const registry = new SchemaRegistry({ host: url });
  try {
    const { id } = await registry.register({ type: SchemaType.AVRO, schema }, { subject, compatibility: COMPATIBILITY.BACKWARD });
    return id;
  } catch (err) {
    const e = err as Error & { status?: number; code?: string };
    if (e.status === 409) {
      throw new ProduceError(`the registry refused the schema for subject ${subject}: it is not BACKWARD compatible with the registered version (${e.message}); give a new field a default, or register under a new subject`);
    }
    if (e.status === undefined) {
      throw new ProduceError(`the Schema Registry is not reachable at ${url} (${e.message}): start it with \`npm run platform:up\``);
    }
    throw new ProduceError(`the registry refused the schema for subject ${subject}: ${e.message}`);
  }
}

async function ensureTopic(admin: kafkajs.Admin, topic: string, partitions: number): Promise<number> {
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  return meta.topics[0].partitions.length;
}

interface StreamContext extends ProduceOptions {
  log: (line: string) => void;
  pace: Pace;
  source: Awaited<ReturnType<typeof openParquet>>;
  schemaId: number;
  partitions: number;
  producer: Producer;
  cpFile: string;
  startRow: number;
  encode: (record: object) => Buffer;
  identity: { file: string; size: number; mtimeMs: number };
}

interface Chunk {
  done: Promise<unknown>;
  nextRow: number;
  sent: number;
  rejected: number;
}

async function stream(ctx: StreamContext): Promise<Summary> {
  const { source, producer, log } = ctx;
  const compression = ctx.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  const lanes: Promise<unknown>[] = Array.from({ length: ctx.partitions }, () => Promise.resolve());
  let rejectedLane: Promise<unknown> = Promise.resolve();
  const lastRow = Math.min(source.rows, ctx.limit === undefined ? Infinity : ctx.startRow + ctx.limit);
  const total = Math.max(0, lastRow - ctx.startRow);
  const progress = createProgress(total, { tty: ctx.progress ?? Boolean(process.stderr.isTTY), log });
  const started = performance.now();
  const counts = { read: 0, sent: 0, rejected: 0, skipped: 0 };
  const acked = { sent: 0, rejected: 0, nextRow: ctx.startRow };
  const inFlight: Chunk[] = [];
  let lastAck = performance.now();
  let firstTs: number | null = null;
  let stopped = false;

  const checkpoint = (complete: boolean) => {
    const cp: Checkpoint = {
      ...ctx.identity, topic: ctx.topic, nextRow: acked.nextRow, rows: source.rows, complete, updatedAt: new Date().toISOString(),
    };
    saveCheckpoint(ctx.cpFile, cp);
  };
  const settleOldest = async () => {
    const chunk = inFlight.shift()!;
    await chunk.done;
    acked.nextRow = chunk.nextRow;
    acked.sent += chunk.sent;
    acked.rejected += chunk.rejected;
    lastAck = performance.now();
    checkpoint(false);
    progress.update(acked.nextRow - ctx.startRow, acked.rejected);
  };
  const stallTimer = setInterval(() => {
    if (inFlight.length > 0 && performance.now() - lastAck > STALL_WARNING_MS) {
      log(`no acknowledgement from Kafka for ${Math.round((performance.now() - lastAck) / 1000)} s: still retrying (is the broker up? \`npm run platform:status\`)`);
    }
  }, STALL_WARNING_MS);
  const sendLane = (partition: number, messages: Message[]) => async () => {
    for (let i = 0; i < messages.length; i += ctx.batchMessages) {
      await producer.send({ topic: ctx.topic, messages: messages.slice(i, i + ctx.batchMessages), acks: -1, compression });
    }
  };

  try {
    // The next row group is read while the current one is sent.
    const groups = readRowGroups(source, ctx.file, ctx.startRow);
    let pending = groups.next();
    outer:
    while (true) {
      const next = await pending;
      if (next.done) break;
      const group: RowGroup = next.value;
      pending = groups.next();
      const chunkRows = chunkRowsFor(ctx.pace, ctx.chunkRows, medianGapMs(group));
      const from = Math.max(group.rowStart, ctx.startRow);
      const to = Math.min(group.rowStart + group.rows, lastRow);
      for (let chunkStart = from; chunkStart < to; chunkStart += chunkRows) {
        if (ctx.signal?.aborted) {
          stopped = true;
          break outer;
        }
        const chunkEnd = Math.min(chunkStart + chunkRows, to);
        const perLane: Message[][] = Array.from({ length: ctx.partitions }, () => []);
        const rejected: Message[] = [];
        let sent = 0;
        let chunkLastTs = NaN;
        for (let row = chunkStart; row < chunkEnd; row++) {
          const raw = rowAt(group, row - group.rowStart);
          counts.read++;
          const verdict = validateRow(raw);
          if (!verdict.ok) {
            rejected.push(rejection(ctx.file, row, raw, verdict.reason));
            continue;
          }
          const { record } = verdict;
          if (ctx.fromId !== undefined && record.id < ctx.fromId) {
            counts.skipped++;
            continue;
          }
          const key = Buffer.from(String(record.id), 'latin1');
          const partition = partitionFor(key, ctx.partitions);
          perLane[partition].push({ key, value: ctx.encode(record), partition });
          chunkLastTs = record.timestamp;
          firstTs ??= record.timestamp;
          sent++;
        }
        counts.sent += sent;
        counts.rejected += rejected.length;

        if (ctx.pace.mode !== 'max' && sent > 0) {
          const wait = waitMs(ctx.pace, counts.sent - sent, performance.now() - started, chunkLastTs, firstTs ?? chunkLastTs);
          if (wait > 0) await sleep(wait, ctx.signal);
        }
        const sends: Promise<unknown>[] = [];
        perLane.forEach((messages, partition) => {
          if (messages.length === 0) return;
          lanes[partition] = lanes[partition].then(sendLane(partition, messages));
          sends.push(lanes[partition]);
        });
        if (rejected.length > 0) {
          rejectedLane = rejectedLane.then(() => producer.send({ topic: ctx.rejectedTopic, messages: rejected, acks: -1 }));
          sends.push(rejectedLane);
        }
        const done = Promise.all(sends);
        // A failure surfaces where the oldest chunk is awaited; the chunks after
        // it must not crash the process as unhandled rejections meanwhile.
        done.catch(() => {});
        inFlight.push({ done, nextRow: chunkEnd, sent, rejected: rejected.length });
        while (inFlight.length > (ctx.pace.mode === 'max' ? MAX_CHUNKS_IN_FLIGHT : 0)) await settleOldest();
      }
    }
    while (inFlight.length > 0) await settleOldest();
  } catch (err) {
    // What Kafka acknowledged is checkpointed already: say where to resume.
    throw new ProduceError(`Kafka stopped taking rows (${(err as Error).message}); ${acked.nextRow.toLocaleString('en')} rows are checkpointed: start Kafka (\`npm run platform:up\`) and run again to resume`);
  } finally {
    clearInterval(stallTimer);
    progress.stop();
  }

  const complete = !stopped && acked.nextRow >= source.rows;
  checkpoint(complete);
  const seconds = (performance.now() - started) / 1000;
  return {
    file: ctx.file,
    rowsInFile: source.rows,
    startRow: ctx.startRow,
    read: counts.read,
    sent: acked.sent,
    rejected: acked.rejected,
    skipped: counts.skipped,
    seconds,
    rowsPerSecond: acked.sent / Math.max(seconds, 1e-3),
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    schemaId: ctx.schemaId,
    stopped,
    complete,
  };
}

function rowAt(group: RowGroup, i: number): RawRow {
  const c = group.columns;
  return { id: c.id[i], timestamp: c.timestamp[i], stock_price: c.stock_price[i], sales_trend: c.sales_trend[i] };
}

/** The rejected topic's message: the raw row as JSON, with why and where from. */
function rejection(file: string, row: number, raw: RawRow, reason: string): Message {
  const rowJson = Object.fromEntries(COLUMNS.map((name) => [name, jsonSafe(raw[name])]));
  return {
    key: String(row),
    value: JSON.stringify({ reason, file, row_index: row, row: rowJson, rejected_at: new Date().toISOString() }),
    headers: { reason },
  };
}

function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  return value ?? null;
}

function medianGapMs(group: RowGroup): number {
  const ts = group.columns.timestamp;
  const n = Math.min(ts.length, 101);
  const gaps: number[] = [];
  for (let i = 1; i < n; i++) {
    const gap = Number(ts[i]) - Number(ts[i - 1]);
    if (Number.isFinite(gap) && gap > 0) gaps.push(gap);
  }
  gaps.sort((a, b) => a - b);
  return gaps.length > 0 ? gaps[Math.floor(gaps.length / 2)] : 60_000;
}

function sleep(ms: number, signal?: AbortSignal) {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export function summaryLine(s: Summary) {
  const parts = [
    `read ${s.read.toLocaleString('en')}`,
    `sent ${s.sent.toLocaleString('en')}`,
    `rejected ${s.rejected.toLocaleString('en')}`,
  ];
  if (s.skipped > 0) parts.push(`skipped ${s.skipped.toLocaleString('en')} (--from-id)`);
  parts.push(`${s.seconds.toFixed(1)} s`, formatRate(s.rowsPerSecond), `peak RSS ${Math.round(s.peakRssMb)} MB`);
  return `${s.stopped ? 'stopped' : 'done'}: ${parts.join(', ')}${s.stopped ? '; checkpoint saved, the next run resumes there' : ''}`;
}
