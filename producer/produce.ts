// Streams a Parquet file into Kafka as Avro: sets up the schema, the topics
// and the producer, then reads row group after row group, validates and
// encodes chunks of rows (chunk.ts), sends them over one lane per partition
// (lanes.ts) and checkpoints what Kafka acknowledged (acks.ts).
import fs from 'node:fs';
import path from 'node:path';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import type { Producer } from 'kafkajs';
import { UserError } from '#lib/errors.mjs';
import { createKafka, ensureTopic } from '#lib/kafka.mjs';
import { Acks } from './acks.js';
import { SCHEMA_FILE, readAvsc } from './avro.js';
import type { SyntheticRecord } from './avro.js';
import { checkpointFile, loadCheckpoint, resumePoint, saveCheckpoint } from './checkpoint.js';
import type { Checkpoint, FileIdentity } from './checkpoint.js';
import { chunkRanges, shapeChunk } from './chunk.js';
import type { ShapeOptions } from './chunk.js';
import { Lanes } from './lanes.js';
import { Pacer, chunkRowsFor, medianGapMs } from './pacing.js';
import type { Pace } from './pacing.js';
import { openParquet, readAhead, readRowGroups } from './parquet.js';
import type { ParquetSource } from './parquet.js';
import { createProgress, formatRate } from './progress.js';
import { frame } from './wire.js';

const { CompressionTypes, Partitioners } = kafkajs;

export class ProduceError extends UserError {}

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

// Chunks left in flight while the next one is encoded, at full speed (a paced
// run waits for each chunk): enough to keep every lane busy, few enough to
// bound memory (each in-flight message holds two Buffers until Kafka
// acknowledges it).
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

  // kafkajs warnings go to `log`, as `kafka <namespace>: <message>`.
  const kafka = createKafka(opts.brokers, {
    clientId: 'kafka-pg-pipeline-producer',
    log,
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
    throw new ProduceError(
      `Kafka is not reachable at ${opts.brokers.join(',')} (${(err as Error).message}): start it with \`npm run platform:up\``,
    );
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
      ...opts,
      file,
      log,
      pace,
      source,
      schemaId,
      partitions,
      producer,
      cpFile,
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
      throw new ProduceError(
        `the registry refused the schema for subject ${subject}: it is not BACKWARD compatible with the registered version (${e.message}); give a new field a default, or register under a new subject`,
      );
    }
    if (e.status === undefined) {
      throw new ProduceError(`the Schema Registry is not reachable at ${url} (${e.message}): start it with \`npm run platform:up\``);
    }
    throw new ProduceError(`the registry refused the schema for subject ${subject}: ${e.message}`);
  }
}

interface StreamContext extends ProduceOptions {
  log: (line: string) => void;
  pace: Pace;
  source: ParquetSource;
  schemaId: number;
  partitions: number;
  producer: Producer;
  cpFile: string;
  startRow: number;
  encode: (record: SyntheticRecord) => Buffer;
  identity: FileIdentity;
}

// Per row group, chunk after chunk: shape its rows into messages (chunk.ts),
// wait until it is due (pacing.ts), queue it on the lanes (lanes.ts), then
// settle the window of chunks in flight down to its size, which checkpoints
// each acknowledged chunk (acks.ts). An abort stops before the next chunk.
async function stream(ctx: StreamContext): Promise<Summary> {
  const { source, pace, log } = ctx;
  const lastRow = Math.min(source.rows, ctx.limit === undefined ? Infinity : ctx.startRow + ctx.limit);
  const progress = createProgress(Math.max(0, lastRow - ctx.startRow), { tty: ctx.progress ?? Boolean(process.stderr.isTTY), log });
  const started = performance.now();
  const lanes = kafkaLanes(ctx);
  const acks = new Acks(ctx.startRow, () => {
    checkpoint(ctx, acks.nextRow, false);
    progress.update(acks.nextRow - ctx.startRow, acks.rejected);
  });
  const stallTimer = warnOnStall(acks, log);
  const pacer = new Pacer(pace);
  const shape: ShapeOptions = { fromId: ctx.fromId, partitions: ctx.partitions, encode: ctx.encode, file: ctx.file };
  const window = pace.mode === 'max' ? MAX_CHUNKS_IN_FLIGHT : 0;
  const counts = { read: 0, skipped: 0 };
  let stopped = false;
  try {
    groups: for await (const group of readAhead(readRowGroups(source, ctx.file, ctx.startRow))) {
      const chunkRows = chunkRowsFor(pace, ctx.chunkRows, medianGapMs(group.columns.timestamp));
      for (const [start, end] of chunkRanges(group.rowStart, group.rows, ctx.startRow, lastRow, chunkRows)) {
        if (ctx.signal?.aborted) {
          stopped = true;
          break groups;
        }
        const chunk = shapeChunk(group, start, end, shape);
        counts.read += chunk.read;
        counts.skipped += chunk.skipped;
        const wait = pacer.waitFor(chunk, performance.now() - started);
        if (wait > 0) await sleep(wait, ctx.signal);
        acks.push({ done: lanes.enqueue(chunk.perLane, chunk.rejected), nextRow: end, sent: chunk.sent, rejected: chunk.rejected.length });
        await acks.settle(window);
      }
    }
    await acks.settle(0);
  } catch (err) {
    // What Kafka acknowledged is checkpointed already: say where to resume.
    throw new ProduceError(
      `Kafka stopped taking rows (${(err as Error).message}); ${acks.nextRow.toLocaleString('en')} rows are checkpointed: start Kafka (\`npm run platform:up\`) and run again to resume`,
    );
  } finally {
    clearInterval(stallTimer);
    progress.stop();
  }
  const complete = !stopped && acks.nextRow >= source.rows;
  checkpoint(ctx, acks.nextRow, complete);
  return summarize(ctx, { ...counts, acks, seconds: (performance.now() - started) / 1000, stopped, complete });
}

function summarize(
  ctx: StreamContext,
  run: { read: number; skipped: number; acks: Acks; seconds: number; stopped: boolean; complete: boolean },
): Summary {
  return {
    file: ctx.file,
    rowsInFile: ctx.source.rows,
    startRow: ctx.startRow,
    read: run.read,
    sent: run.acks.sent,
    rejected: run.acks.rejected,
    skipped: run.skipped,
    seconds: run.seconds,
    rowsPerSecond: run.acks.sent / Math.max(run.seconds, 1e-3),
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    schemaId: ctx.schemaId,
    stopped: run.stopped,
    complete: run.complete,
  };
}

/** A lane per partition of the topic, and one for the rejected topic. */
function kafkaLanes(ctx: StreamContext): Lanes {
  const compression = ctx.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  return new Lanes(
    ctx.partitions,
    ctx.batchMessages,
    (messages) => ctx.producer.send({ topic: ctx.topic, messages, acks: -1, compression }),
    (messages) => ctx.producer.send({ topic: ctx.rejectedTopic, messages, acks: -1 }),
  );
}

/** Says so every STALL_WARNING_MS while Kafka acknowledges nothing. */
function warnOnStall(acks: Acks, log: (line: string) => void) {
  return setInterval(() => {
    const silentMs = acks.silentForMs(performance.now());
    if (silentMs > STALL_WARNING_MS) {
      log(
        `no acknowledgement from Kafka for ${Math.round(silentMs / 1000)} s: still retrying (is the broker up? \`npm run platform:status\`)`,
      );
    }
  }, STALL_WARNING_MS);
}

function checkpoint(ctx: StreamContext, nextRow: number, complete: boolean) {
  const cp: Checkpoint = {
    ...ctx.identity,
    topic: ctx.topic,
    nextRow,
    rows: ctx.source.rows,
    complete,
    updatedAt: new Date().toISOString(),
  };
  saveCheckpoint(ctx.cpFile, cp);
}

function sleep(ms: number, signal?: AbortSignal) {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
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
