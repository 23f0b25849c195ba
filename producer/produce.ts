// Streams a Parquet file into Kafka as Avro: takes the lock of its
// checkpoint, sets up the schema, the topics and the producer, then reads the
// file slice after slice, validates and encodes chunks of rows (chunk.ts),
// sends them over one lane per partition (lanes.ts) and checkpoints what
// Kafka acknowledged (acks.ts). A failure ends in one line that names its
// cause: the file, the checkpoint's disk, or Kafka.
import fs from 'node:fs';
import path from 'node:path';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import type { Producer } from 'kafkajs';
import { UserError } from '#lib/errors.mjs';
import { createKafka, ensureTopic } from '#lib/kafka.mjs';
import { acquireLock } from '#lib/lock.mjs';
import { Acks } from './acks.js';
import { SCHEMA_FILE, readAvsc } from './avro.js';
import type { SyntheticRecord } from './avro.js';
import { CheckpointError, checkpointFile, errnoText, loadCheckpoint, resumePoint, saveCheckpoint, writeFix } from './checkpoint.js';
import type { Checkpoint, FileIdentity } from './checkpoint.js';
import { chunkRanges, shapeChunk } from './chunk.js';
import type { ShapeOptions } from './chunk.js';
import { Lanes } from './lanes.js';
import { fileLog } from './logfile.js';
import { Pacer, chunkRowsFor, medianGapMs, sleep } from './pacing.js';
import type { Pace } from './pacing.js';
import { RowGroupError, openParquet, readAhead, readRowGroups } from './parquet.js';
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
  /**
   * Where kafkajs's own log (WARN and above) goes: appended to this file
   * (the CLI: <STATE_DIR>/logs/producer.log), which a Kafka failure names.
   * Without it, to `log`.
   */
  kafkaLogFile?: string;
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
const CONNECT_NOTICE_MS = 10_000;

export async function produce(opts: ProduceOptions): Promise<Summary> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const pace = opts.pace ?? { mode: 'max' };
  const file = path.resolve(opts.file);
  const source = await openParquet(file);
  const stat = fs.statSync(file);

  // One producer per checkpoint: a second one on the same file, topic and
  // --from-id would write the same checkpoint.
  const cpFile = checkpointFile(opts.runDir, file, opts.topic, opts.fromId);
  const selection = opts.fromId === undefined ? '' : ` (--from-id ${opts.fromId})`;
  const lockFile = cpFile.replace(/\.json$/, '.lock');
  const lock = await acquireLock(lockFile, {
    what: 'producer',
    doing: `is sending ${file} to ${opts.topic}${selection}`,
    fix: (holder) => `wait for it to finish, or stop it (Ctrl-C in its terminal, or \`kill ${holder.pid}\`: it saves its checkpoint)`,
  }).catch((err) => {
    if (err instanceof UserError || typeof err?.code !== 'string') throw err;
    throw new CheckpointError(`cannot create the lock ${lockFile} (${errnoText(err)}): ${writeFix(err.code, path.dirname(lockFile))}`, {
      cause: err,
    });
  });
  try {
    const { type, text: schemaText } = readAvsc(opts.schemaFile ?? SCHEMA_FILE);
    const schemaId = await registerSchema(opts.registryUrl, opts.subject, schemaText);
    const kafkaLog = opts.kafkaLogFile ? fileLog(opts.kafkaLogFile, log) : log;
    kafkaLog(`kafka-pg-pipeline producer (pid ${process.pid}): sending ${file} to ${opts.topic}${selection}`);
    return await withKafka(opts, log, kafkaLog, (producer, partitions) =>
      sendFile({
        ...opts,
        file,
        log,
        pace,
        source,
        schemaId,
        partitions,
        producer,
        cpFile,
        encode: (record) => frame(schemaId, type.toBuffer(record)),
        identity: { file, size: stat.size, mtimeMs: stat.mtimeMs },
      }),
    );
  } finally {
    lock.release();
  }
}

/**
 * Connects kafkajs (its log to `kafkaLog`), makes sure of the topics, runs
 * `work` with a producer, disconnects. While Kafka keeps it waiting to
 * connect, says so on `log` every CONNECT_NOTICE_MS.
 */
async function withKafka<T>(
  opts: ProduceOptions,
  log: (line: string) => void,
  kafkaLog: (line: string) => void,
  work: (producer: Producer, partitions: number) => Promise<T>,
) {
  const kafka = createKafka(opts.brokers, {
    clientId: 'kafka-pg-pipeline-producer',
    log: kafkaLog,
    connectionTimeout: 3000,
    // Reconnects (metadata, the broker coming back) keep trying for about five
    // minutes: a broker restart must not end the run. Sends themselves retry
    // without end (idempotent producer); the stall warning says what is going on.
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 30 },
  });
  const admin = kafka.admin({ retry: { retries: 2 } });
  const connecting = performance.now();
  const notice = setInterval(
    () =>
      log(
        `still connecting to Kafka at ${opts.brokers.join(',')} (${Math.round((performance.now() - connecting) / 1000)} s): is it up? \`npm run platform:status\`${logNote(opts)}`,
      ),
    CONNECT_NOTICE_MS,
  );
  try {
    await untilAborted(admin.connect(), opts.signal);
  } catch (err) {
    await admin.disconnect().catch(() => {});
    if (err instanceof UserError) throw err;
    throw new ProduceError(
      `Kafka is not reachable at ${opts.brokers.join(',')} (${(err as Error).message}): start it with \`npm run platform:up\`${logNote(opts)}`,
    );
  } finally {
    clearInterval(notice);
  }
  let producer: Producer | undefined;
  try {
    let partitions: number;
    try {
      partitions = await ensureTopic(admin, opts.topic, opts.partitions);
      await ensureTopic(admin, opts.rejectedTopic, 1);
      producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
    } catch (err) {
      throw new ProduceError(
        `Kafka did not set up the topics ${opts.topic} and ${opts.rejectedTopic} or the producer (${(err as Error).message}): check it with \`npm run platform:status\` and run again${logNote(opts)}`,
        { cause: err },
      );
    }
    return await work(producer, partitions);
  } finally {
    await producer?.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

/** `work`, unless `signal` aborts first: then a stop (exit code 130) before anything was sent. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(new ProduceError('stopped while connecting to Kafka: nothing was sent', { exitCode: 130 }));
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

const logNote = (opts: { kafkaLogFile?: string }) => (opts.kafkaLogFile ? ` (kafkajs's log: ${opts.kafkaLogFile})` : '');

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

/** What a run needs once Kafka is set up: sendFile's input (tests give it a fake producer). */
export interface SendContext extends Omit<ProduceOptions, 'brokers' | 'registryUrl' | 'subject' | 'runDir' | 'schemaFile'> {
  log: (line: string) => void;
  pace: Pace;
  source: ParquetSource;
  schemaId: number;
  partitions: number;
  producer: Pick<Producer, 'send'>;
  cpFile: string;
  encode: (record: SyntheticRecord) => Buffer;
  identity: FileIdentity;
}

interface StreamContext extends SendContext {
  startRow: number;
}

/** Sends the file from where its checkpoint says (the whole file without one). */
export async function sendFile(ctx: SendContext): Promise<Summary> {
  const resume = resumePoint(loadCheckpoint(ctx.cpFile), ctx.identity, ctx.topic, Boolean(ctx.restart), ctx.fromId);
  if (resume.note) ctx.log(resume.note);
  return stream({ ...ctx, startRow: resume.row });
}

/** A send Kafka did not acknowledge, on its way to the one line that says so. */
class KafkaStopped extends Error {}

// Slice after slice of the file, chunk after chunk: shape its rows into
// messages (chunk.ts), wait until it is due (pacing.ts), queue it on the
// lanes (lanes.ts), then settle the window of chunks in flight down to its
// size, which checkpoints each acknowledged chunk (acks.ts). An abort stops
// before the next chunk. A failure is named by where it comes from: the file
// (RowGroupError), the checkpoint (CheckpointError) or Kafka (a send).
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
  // Waits for the chunks in flight down to `max`: a send that fails is Kafka's
  // failure; a checkpoint that cannot be written stays a CheckpointError.
  const settle = async (max: number) => {
    try {
      await acks.settle(max);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new KafkaStopped((err as Error).message, { cause: err });
    }
  };
  const stallTimer = warnOnStall(acks, log, logNote(ctx));
  const pacer = new Pacer(pace);
  const shape: ShapeOptions = { fromId: ctx.fromId, partitions: ctx.partitions, encode: ctx.encode, file: ctx.file };
  const window = pace.mode === 'max' ? MAX_CHUNKS_IN_FLIGHT : 0;
  const counts = { read: 0, skipped: 0 };
  let stopped = false;
  try {
    slices: for await (const group of readAhead(readRowGroups(source, ctx.file, ctx.startRow))) {
      if (group.rowStart >= lastRow) break;
      const chunkRows = chunkRowsFor(pace, ctx.chunkRows, medianGapMs(group.columns.timestamp));
      for (const [start, end] of chunkRanges(group.rowStart, group.rows, ctx.startRow, lastRow, chunkRows)) {
        if (ctx.signal?.aborted) {
          stopped = true;
          break slices;
        }
        const chunk = shapeChunk(group, start, end, shape);
        counts.read += chunk.read;
        counts.skipped += chunk.skipped;
        const wait = pacer.waitFor(chunk, performance.now() - started);
        if (wait > 0) await sleep(wait, ctx.signal);
        acks.push({ done: lanes.enqueue(chunk.perLane, chunk.rejected), nextRow: end, sent: chunk.sent, rejected: chunk.rejected.length });
        await settle(window);
      }
    }
    await settle(0);
  } catch (err) {
    throw await explainFailure(ctx, acks, err);
  } finally {
    clearInterval(stallTimer);
    progress.stop();
  }
  const complete = !stopped && acks.nextRow >= source.rows;
  checkpoint(ctx, acks.nextRow, complete);
  return summarize(ctx, { ...counts, acks, seconds: (performance.now() - started) / 1000, stopped, complete });
}

/** The one line for a failure inside the stream, saying how far the checkpoint got. */
async function explainFailure(ctx: StreamContext, acks: Acks, err: unknown): Promise<unknown> {
  const at = (row: number) => row.toLocaleString('en');
  if (err instanceof KafkaStopped) {
    // What Kafka acknowledged is checkpointed already: say where to resume.
    return new ProduceError(
      `Kafka stopped taking rows (${err.message}); ${at(acks.nextRow)} rows are checkpointed: start Kafka (\`npm run platform:up\`) and run again to resume${logNote(ctx)}`,
      { cause: err.cause },
    );
  }
  if (err instanceof RowGroupError) {
    // The rows before it are on their way: let them land and be checkpointed.
    await acks.settle(0).catch(() => {});
    return new RowGroupError(
      `${err.message}; the rows before row ${at(acks.nextRow)} are sent and checkpointed: replace ${ctx.file} with a readable copy and run again`,
      err.group,
      err.row,
      err.cause,
    );
  }
  // A CheckpointError says it all; anything else is a bug of ours: its stack shows.
  return err;
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
function warnOnStall(acks: Acks, log: (line: string) => void, logNote: string) {
  return setInterval(() => {
    const silentMs = acks.silentForMs(performance.now());
    if (silentMs > STALL_WARNING_MS) {
      log(
        `no acknowledgement from Kafka for ${Math.round(silentMs / 1000)} s: still retrying (is the broker up? \`npm run platform:status\`)${logNote}`,
      );
    }
  }, STALL_WARNING_MS);
}

function checkpoint(ctx: StreamContext, nextRow: number, complete: boolean) {
  const cp: Checkpoint = {
    ...ctx.identity,
    topic: ctx.topic,
    ...(ctx.fromId === undefined ? {} : { fromId: ctx.fromId }),
    nextRow,
    rows: ctx.source.rows,
    complete,
    updatedAt: new Date().toISOString(),
  };
  saveCheckpoint(ctx.cpFile, cp);
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
