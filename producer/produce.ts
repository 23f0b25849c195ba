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
import { checkTrust, createKafka, ensureTopic, kafkaAccessProblem } from '#lib/kafka.mjs';
import type { KafkaClient } from '#lib/kafka.mjs';
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
import { Resender, SendRefused, SendStopped } from './resend.js';
import type { Sender } from './resend.js';
import { frame } from './wire.js';

const { CompressionTypes, Partitioners } = kafkajs;

export class ProduceError extends UserError {}

export interface ProduceOptions {
  file: string;
  /** Where and as whom to connect (lib/kafka.mjs kafkaClient). */
  kafka: KafkaClient;
  registryUrl: string;
  /** Basic authentication of the registry, if it asks for it. */
  registryAuth?: { username: string; password: string };
  /** Of the topics it creates: -1 leaves it to the cluster. */
  replication?: { replicationFactor: number; minInsyncReplicas: number };
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
  /** kafkajs's connectionTimeout, ms (3,000). */
  connectionTimeout?: number;
  /** kafkajs's requestTimeout, ms (30,000): a request unanswered this long is a failure kafkajs retries. */
  requestTimeout?: number;
  /** How often the stall warning repeats while Kafka acknowledges nothing, ms (30,000). */
  stallWarningMs?: number;
  /** The pauses before a request kafkajs gave up on goes again: the first, doubling up to the last, ms ([500, 10,000]). */
  resendPauseMs?: [first: number, max: number];
  /** How long a stop waits for the requests out, and a disconnect for Kafka, ms (3,000). */
  stopWaitMs?: number;
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
  /** CPU time of this process so far (user + system), seconds. */
  cpuSeconds: number;
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
const CONNECTION_TIMEOUT_MS = 3000;
const REQUEST_TIMEOUT_MS = 30_000;
const RESEND_PAUSE_MS: [number, number] = [500, 10_000];
const STOP_WAIT_MS = 3000;

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
    const schemaId = await registerSchema(opts.registryUrl, opts.subject, schemaText, opts.registryAuth);
    const kafkaLog = opts.kafkaLogFile ? fileLog(opts.kafkaLogFile, log) : log;
    kafkaLog(`kafka-pg-pipeline producer (pid ${process.pid}): sending ${file} to ${opts.topic}${selection}`);
    return await withKafka(opts, log, kafkaLog, (producer, renewProducer, partitions) =>
      sendFile({
        ...opts,
        file,
        log,
        kafkaLog,
        pace,
        source,
        schemaId,
        partitions,
        producer,
        renewProducer,
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
 * `work` with a producer and a way to replace it with a new one, disconnects
 * (each disconnect waits stopWaitMs at most: a frozen broker never answers).
 * While Kafka keeps it waiting to connect, says so on `log` every
 * CONNECT_NOTICE_MS.
 */
async function withKafka<T>(
  opts: ProduceOptions,
  log: (line: string) => void,
  kafkaLog: (line: string) => void,
  work: (producer: Producer, renew: () => Promise<Producer>, partitions: number) => Promise<T>,
) {
  const stopWaitMs = opts.stopWaitMs ?? STOP_WAIT_MS;
  // Options of kafkajs's Kafka: createKafka hands them over as they are.
  const kafkaOptions = {
    clientId: 'kafka-pg-pipeline-producer',
    log: kafkaLog,
    connectionTimeout: opts.connectionTimeout ?? CONNECTION_TIMEOUT_MS,
    requestTimeout: opts.requestTimeout ?? REQUEST_TIMEOUT_MS,
    // Reconnects (metadata, the broker coming back) keep trying for about five
    // minutes, and so does each request; then a request that failed for a
    // reason that passes goes again, without end (resend.ts): a broker frozen
    // or restarting for however long must not end the run. The stall warning
    // says what is going on.
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 30 },
  };
  const kafka = createKafka(opts.kafka, kafkaOptions);
  const admin = kafka.admin({ retry: { retries: 2 } });
  const connecting = performance.now();
  const notice = setInterval(
    () =>
      log(
        `still connecting to Kafka at ${opts.kafka.brokers.join(',')} (${Math.round((performance.now() - connecting) / 1000)} s): is it up? \`npm run platform:status\`${logNote(opts)}`,
      ),
    CONNECT_NOTICE_MS,
  );
  try {
    await untilAborted(checkTrust(opts.kafka), opts.signal);
    await untilAborted(admin.connect(), opts.signal);
  } catch (err) {
    await bounded(admin.disconnect(), stopWaitMs);
    if (err instanceof UserError) throw err;
    const access = kafkaAccessProblem(err, 'producer');
    if (access) throw new ProduceError(access, { cause: err });
    throw new ProduceError(
      `Kafka is not reachable at ${opts.kafka.brokers.join(',')} (${(err as Error).message}): start it with \`npm run platform:up\`${logNote(opts)}`,
    );
  } finally {
    clearInterval(notice);
  }
  const newProducer = () =>
    kafka.producer({ idempotent: true, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  let producer: Producer | undefined;
  let done = false;
  // A new producer (a new producer id, its sequences from 0) in place of the
  // current one, which is let go.
  const renew = async () => {
    const fresh = newProducer();
    try {
      await fresh.connect();
    } catch (err) {
      void bounded(fresh.disconnect(), stopWaitMs);
      throw err;
    }
    if (done) {
      void bounded(fresh.disconnect(), stopWaitMs);
    } else {
      const old = producer;
      producer = fresh;
      if (old) void bounded(old.disconnect(), stopWaitMs);
    }
    return fresh;
  };
  try {
    let partitions: number;
    try {
      partitions = await ensureTopic(admin, opts.topic, opts.partitions, opts.replication);
      await ensureTopic(admin, opts.rejectedTopic, 1, opts.replication);
      producer = newProducer();
      await producer.connect();
    } catch (err) {
      const access = kafkaAccessProblem(err, 'producer');
      if (access) throw new ProduceError(access, { cause: err });
      throw new ProduceError(
        `Kafka did not set up the topics ${opts.topic} and ${opts.rejectedTopic} or the producer (${(err as Error).message}): check it with \`npm run platform:status\` and run again${logNote(opts)}`,
        { cause: err },
      );
    }
    return await work(producer, renew, partitions);
  } finally {
    done = true;
    await Promise.all([producer && bounded(producer.disconnect(), stopWaitMs), bounded(admin.disconnect(), stopWaitMs)]);
  }
}

/** Waits for `work` (its failure ignored), `ms` at most. */
async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
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

async function registerSchema(
  url: string,
  subject: string,
  schema: string,
  auth?: { username: string; password: string },
): Promise<number> {
  const registry = new SchemaRegistry({ host: url, ...(auth ? { auth } : {}) });
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
export interface SendContext
  extends Omit<ProduceOptions, 'kafka' | 'registryUrl' | 'registryAuth' | 'replication' | 'subject' | 'runDir' | 'schemaFile'> {
  log: (line: string) => void;
  /** kafkajs's log: each request sent again goes there. */
  kafkaLog?: (line: string) => void;
  pace: Pace;
  source: ParquetSource;
  schemaId: number;
  partitions: number;
  producer: Sender;
  /** Connects a new producer in place of the current one, for when Kafka lost its sequence (resend.ts). */
  renewProducer?: () => Promise<Sender>;
  cpFile: string;
  encode: (record: SyntheticRecord) => Buffer;
  identity: FileIdentity;
}

interface StreamContext extends SendContext {
  startRow: number;
}

/** Sends the file from where its checkpoint says (the whole file without one). */
export async function sendFile(ctx: SendContext): Promise<Summary> {
  // --restart ignores the checkpoint, a corrupt one included: it is not even read.
  const resume = resumePoint(
    ctx.restart ? undefined : loadCheckpoint(ctx.cpFile),
    ctx.identity,
    ctx.topic,
    Boolean(ctx.restart),
    ctx.fromId,
  );
  if (resume.note) ctx.log(resume.note);
  return stream({ ...ctx, startRow: resume.row });
}

// Slice after slice of the file, chunk after chunk: shape its rows into
// messages (chunk.ts), wait until it is due (pacing.ts), queue it on the
// lanes (lanes.ts), then settle the window of chunks in flight down to its
// size, which checkpoints each acknowledged chunk (acks.ts). Kafka out of
// reach or frozen only holds the stream up: each request goes again until
// it lands (resend.ts), and the stall warning says so. An abort stops before
// the next chunk, and lets the chunks in flight land for stopWaitMs. A
// failure is named by where it comes from: the file (RowGroupError), the
// checkpoint (CheckpointError) or Kafka (a request it refused).
async function stream(ctx: StreamContext): Promise<Summary> {
  const { source, pace, log } = ctx;
  const lastRow = Math.min(source.rows, ctx.limit === undefined ? Infinity : ctx.startRow + ctx.limit);
  const progress = createProgress(Math.max(0, lastRow - ctx.startRow), { tty: ctx.progress ?? Boolean(process.stderr.isTTY), log });
  const started = performance.now();
  const [firstPauseMs, maxPauseMs] = ctx.resendPauseMs ?? RESEND_PAUSE_MS;
  const resender = new Resender({
    producer: ctx.producer,
    renew: ctx.renewProducer,
    signal: ctx.signal,
    firstPauseMs,
    maxPauseMs,
    stopWaitMs: ctx.stopWaitMs ?? STOP_WAIT_MS,
    log,
    note: ctx.kafkaLog,
  });
  const lanes = kafkaLanes(ctx, resender);
  const acks = new Acks(ctx.startRow, () => {
    checkpoint(ctx, acks.nextRow, false);
    progress.update(acks.nextRow - ctx.startRow, acks.rejected);
  });
  const stallTimer = warnOnStall(acks, log, logNote(ctx), ctx.stallWarningMs ?? STALL_WARNING_MS);
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
        // Fails with Kafka's refusal (SendRefused), a stop (SendStopped) or a
        // checkpoint that cannot be written (CheckpointError).
        await acks.settle(window);
      }
    }
    await acks.settle(0);
  } catch (err) {
    // A stop that found requests unanswered: what was acknowledged is checkpointed.
    if (!(err instanceof SendStopped)) throw await explainFailure(ctx, acks, err);
    stopped = true;
  } finally {
    resender.close();
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
  if (err instanceof SendRefused) {
    // What Kafka acknowledged is checkpointed already: say where to resume.
    return new ProduceError(
      `Kafka refused rows for ${err.topic} (${err.message}); ${at(acks.nextRow)} rows are checkpointed: fix what it says and run again to resume${logNote(ctx)}`,
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
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    schemaId: ctx.schemaId,
    stopped: run.stopped,
    complete: run.complete,
  };
}

/** A lane per partition of the topic, and one for the rejected topic, each request sent until it lands. */
function kafkaLanes(ctx: StreamContext, resender: Resender): Lanes {
  const compression = ctx.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  return new Lanes(
    ctx.partitions,
    ctx.batchMessages,
    (messages) => resender.send({ topic: ctx.topic, messages, acks: -1, compression }),
    (messages) => resender.send({ topic: ctx.rejectedTopic, messages, acks: -1 }),
  );
}

/** Says so every `everyMs` while Kafka acknowledges nothing. */
function warnOnStall(acks: Acks, log: (line: string) => void, logNote: string, everyMs: number) {
  return setInterval(() => {
    const silentMs = acks.silentForMs(performance.now());
    if (silentMs > everyMs) {
      log(
        `no acknowledgement from Kafka for ${Math.round(silentMs / 1000)} s: still retrying (is the broker up? \`npm run platform:status\`)${logNote}`,
      );
    }
  }, everyMs);
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
  parts.push(
    `${s.seconds.toFixed(1)} s`,
    formatRate(s.rowsPerSecond),
    `peak RSS ${Math.round(s.peakRssMb)} MB`,
    `CPU ${s.cpuSeconds.toFixed(1)} s`,
  );
  return `${s.stopped ? 'stopped' : 'done'}: ${parts.join(', ')}${s.stopped ? '; checkpoint saved, the next run resumes there' : ''}`;
}
