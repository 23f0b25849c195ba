// Sends quarantined records back to the pipeline's topic once their cause is
// fixed: the sink's dead letter queue as the bytes Connect could not take,
// the producer's rejected rows validated again (those that pass now are
// encoded and sent; the others stay counted as still invalid).
//
// Each record keeps its Kafka timestamp: a dead letter carries the original
// record's (Connect's DeadLetterQueueReporter sends it with it), a rejected
// row the time the producer sent it to the rejected topic. The table keeps
// per id the version with the newest timestamp (migration 20261207122100),
// so a replayed record never overwrites a value sent after it.
//
// A consumer group per quarantine remembers how far replay got, committed as
// Kafka acknowledges each batch: a second run, or the next one after a crash,
// sends nothing acknowledged twice; a crash between an acknowledgement and its
// commit resends that one batch, which the sink's upsert on id absorbs (the
// next replay first waits, up to kafkajs's 30 s session, for Kafka to drop the
// crashed one from the group). A lock per quarantine keeps two replays from
// sending the same records at once.
import path from 'node:path';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import type { Admin, IHeaders, KafkaMessage, Message } from 'kafkajs';
import { UserError } from '#lib/errors.mjs';
import { checkTrust, createKafka, groupRange, headerText, kafkaAccessProblem, readAsMember } from '#lib/kafka.mjs';
import type { KafkaClient } from '#lib/kafka.mjs';
import { acquireLock, readLock } from '#lib/lock.mjs';
import type { Holder } from '#lib/lock.mjs';
import { SCHEMA_FILE, readAvsc } from './avro.js';
import { partitionFor } from './partition.js';
import { validateRow } from './validate.js';
import { frame } from './wire.js';

export interface ReplayOptions {
  kafka: KafkaClient;
  registryUrl: string;
  registryAuth?: { username: string; password: string };
  /** The pipeline's topic: where replayed records go. */
  topic: string;
  subject: string;
  /** The quarantine: the DLQ or the rejected topic, and its replay group. */
  source: { kind: 'dlq' | 'rejected'; topic: string; group: string };
  /** Mark pending records handled without sending them. */
  drop?: boolean;
  /** Where the lock of each quarantine's replay lives (replayLockFile). */
  runDir: string;
  /** Records handled (sent or kept out) between two commits of progress. */
  batchRecords?: number;
  log?: (line: string) => void;
  /** For the user, while the replay waits. */
  note?: (line: string) => void;
}

export interface ReplayResult {
  pending: number;
  sent: number;
  stillInvalid: number;
  dropped: number;
  reasons: [string, number][];
  /** What may keep the newest value from winning, one line each. */
  warnings: string[];
}

/** The lock of the replays of one quarantine: one at a time sends its records. Pure. */
export function replayLockFile(runDir: string, sourceTopic: string) {
  return path.join(runDir, 'replay', `${sourceTopic}.lock`);
}

/**
 * The timestamp a replayed record is sent with: the one it carries, so that
 * the table can tell it from a newer version of its id. A record without one
 * (-1, from an old message format) is stamped by the producer, as Connect
 * stamps such a dead letter. Pure.
 */
export function originalTimestamp(m: Pick<KafkaMessage, 'timestamp'>): string | undefined {
  return /^\d+$/.test(m.timestamp) ? m.timestamp : undefined;
}

/**
 * How far a replay got in each partition of its quarantine: the offset after
 * the last record read, and the part of it not committed yet. What was read
 * is done once the batch it went into is acknowledged (or it was kept out),
 * so the caller asks for `due()` only after a flush. Pure.
 */
export class Progress {
  private readonly next = new Map<number, number>();
  private readonly committed = new Map<number, number>();

  read(partition: number, offset: number) {
    this.next.set(partition, offset + 1);
  }

  /** The partitions that moved since the last commit, with the offset to commit. */
  due(): { partition: number; offset: string }[] {
    return [...this.next]
      .filter(([partition, next]) => next > (this.committed.get(partition) ?? -1))
      .sort((a, b) => a[0] - b[0])
      .map(([partition, next]) => ({ partition, offset: String(next) }));
  }

  commit(offsets: { partition: number; offset: string }[]) {
    for (const { partition, offset } of offsets) this.committed.set(partition, Number(offset));
  }
}

/**
 * The topics of `described` that stamp records as they arrive
 * (message.timestamp.type=LogAppendTime): there a replayed record gets the
 * time of the replay, and wins over newer values of its id. Pure.
 */
export function appendTimeTopics(described: {
  resources: { resourceName: string; configEntries: { configName: string; configValue: string }[] }[];
}) {
  return described.resources
    .filter((r) => r.configEntries.some((e) => e.configName === 'message.timestamp.type' && e.configValue === 'LogAppendTime'))
    .map((r) => r.resourceName);
}

/** A dead letter as the record it was: its bytes, its partition, minus Connect's error headers. Pure. */
export function fromDeadLetter(m: KafkaMessage, topic: string): { message: Message; partition: number } | { skip: string } {
  const origin = headerText(m.headers, '__connect.errors.topic');
  if (origin !== undefined && origin !== topic) return { skip: `from topic ${origin}, not ${topic}` };
  const partition = Number(headerText(m.headers, '__connect.errors.partition'));
  const headers = Object.fromEntries(Object.entries(m.headers ?? {}).filter(([k]) => !k.startsWith('__connect.errors.')));
  return {
    message: { key: m.key, value: m.value, headers: headers as IHeaders, timestamp: originalTimestamp(m) },
    partition: Number.isInteger(partition) && partition >= 0 ? partition : -1,
  };
}

/**
 * A rejected row validated again: a record to send, or why it still fails.
 * Pure apart from `encode`.
 */
export function fromRejected(
  m: KafkaMessage,
  partitions: number,
  encode: (record: object) => Buffer,
): { message: Message; partition: number } | { invalid: string } {
  let row: Record<string, unknown>;
  try {
    row = JSON.parse(String(m.value)).row;
  } catch {
    return { invalid: 'not a rejected-row message (no JSON row)' };
  }
  if (!row || typeof row !== 'object') return { invalid: 'not a rejected-row message (no JSON row)' };
  const verdict = validateRow({ id: row.id, timestamp: row.timestamp, stock_price: row.stock_price, sales_trend: row.sales_trend });
  if (!verdict.ok) return { invalid: verdict.reason };
  const key = Buffer.from(String(verdict.record.id), 'latin1');
  return { message: { key, value: encode(verdict.record), timestamp: originalTimestamp(m) }, partition: partitionFor(key, partitions) };
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const log = opts.log ?? (() => {});
  // Before Kafka: a second replay refuses at once, whatever state Kafka is in.
  const lock = await replayLock(opts);
  try {
    return await replayLocked(opts, log);
  } finally {
    lock.release();
  }
}

/**
 * Whether a lock's holder is the watchdog, which sends back what was
 * dead-lettered for a passing cause under this same lock (ops/heal.mjs): a
 * few seconds at a time, so a replay waits for it rather than refuse. Pure.
 */
export function heldByWatchdog(holder: Pick<Holder, 'argv'>) {
  return holder.argv.some((arg) => /[\\/]watchdog\.mjs$/.test(arg));
}

async function replayLock(opts: ReplayOptions) {
  const file = replayLockFile(opts.runDir, opts.source.topic);
  const lockOptions = {
    what: 'replay',
    doing: opts.drop ? `is dropping what waits in ${opts.source.topic}` : `is sending ${opts.source.topic} back to ${opts.topic}`,
    fix: (holder: Holder) =>
      `wait for it to finish, or stop it (\`kill ${holder.pid}\`: the next replay goes on after what Kafka acknowledged)`,
  };
  try {
    try {
      return await acquireLock(file, lockOptions);
    } catch (err) {
      const holder = err instanceof UserError ? readLock(file) : undefined;
      if (!holder || !heldByWatchdog(holder)) throw err;
      return await acquireLock(file, {
        ...lockOptions,
        onBusy: 'wait',
        timeoutMs: 300_000,
        onWait: (h) => opts.note?.(`the watchdog (pid ${h.pid}) is sending back dead letters of a passing cause: waiting for it`),
      });
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof UserError || typeof code !== 'string') throw err;
    throw new UserError(
      `cannot create the lock ${file} (${code}): make ${path.dirname(file)} writable, or set STATE_DIR to a folder you can write`,
      { cause: err },
    );
  }
}

async function replayLocked(opts: ReplayOptions, log: (line: string) => void): Promise<ReplayResult> {
  const kafka = createKafka(opts.kafka, { clientId: 'kafka-pg-pipeline-replay' });
  const admin = kafka.admin();
  await checkTrust(opts.kafka);
  try {
    await admin.connect();
  } catch (err) {
    throw new UserError(
      kafkaAccessProblem(err) ??
        `Kafka is not reachable at ${opts.kafka.brokers.join(',')} (${(err as Error).message}): run \`npm run platform:up\``,
    );
  }
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  // The replay group's own member: its commits are the group's, at the cost of
  // a request each (admin.setOffsets joins the group anew: seconds a commit).
  const consumer = kafka.consumer({ groupId: opts.source.group, allowAutoTopicCreation: false });
  try {
    const result: ReplayResult = { pending: 0, sent: 0, stillInvalid: 0, dropped: 0, reasons: [], warnings: [] };
    if (!(await admin.listTopics()).includes(opts.source.topic)) return result;
    const ranges = await groupRange(admin, opts.source.topic, opts.source.group);
    result.pending = ranges.reduce((sum, r) => sum + r.to - r.from, 0);
    if (result.pending === 0) return result;
    if (!opts.drop) result.warnings = await timestampWarnings(admin, [opts.source.topic, opts.topic]);

    const partitions = (await admin.fetchTopicMetadata({ topics: [opts.topic] })).topics[0].partitions.length;
    let encode: (record: object) => Buffer = () => {
      throw new Error('no schema');
    };
    if (!opts.drop && opts.source.kind === 'rejected') {
      const { type, text } = readAvsc(SCHEMA_FILE);
      const registry = new SchemaRegistry({ host: opts.registryUrl, ...(opts.registryAuth ? { auth: opts.registryAuth } : {}) });
      let id: number;
      try {
        ({ id } = await registry.register(
          { type: SchemaType.AVRO, schema: text },
          { subject: opts.subject, compatibility: COMPATIBILITY.BACKWARD },
        ));
      } catch (err) {
        throw new UserError(
          `the Schema Registry at ${opts.registryUrl} did not take the schema (${(err as Error).message}): start it with \`npm run platform:up\`, then replay again`,
        );
      }
      encode = (record) => frame(id, type.toBuffer(record));
    }
    if (!opts.drop) await producer.connect();
    await consumer.connect();
    const commit = (offsets: { partition: number; offset: string }[]) =>
      consumer.commitOffsets(offsets.map((o) => ({ topic: opts.source.topic, ...o })));

    const reasons = new Map<string, number>();
    const count = (why: string) => reasons.set(why, (reasons.get(why) ?? 0) + 1);
    const batchRecords = opts.batchRecords ?? 1000;
    const progress = new Progress();
    let handled = 0;
    let failed: unknown;
    let batch: { message: Message; partition: number }[] = [];
    // Sends the batch, then commits how far the reading got: every record read
    // so far is acknowledged now, or was kept out.
    const checkpoint = async () => {
      if (batch.length > 0) {
        // kafkajs groups a send's messages by partition itself, keeping their order in each.
        const messages = batch.map(({ message, partition }) => ({
          ...message,
          partition: partition >= 0 && partition < partitions ? partition : partitionFor(message.key as Buffer, partitions),
        }));
        await producer.send({ topic: opts.topic, acks: -1, messages });
        result.sent += batch.length;
        batch = [];
      }
      const due = progress.due();
      if (due.length > 0) {
        await commit(due);
        progress.commit(due);
      }
      handled = 0;
    };
    await readAsMember(consumer, opts.source.topic, ranges, async (m: KafkaMessage, partition: number) => {
      progress.read(partition, Number(m.offset));
      handled++;
      if (opts.drop) result.dropped++;
      else if (opts.source.kind === 'dlq') {
        const out = fromDeadLetter(m, opts.topic);
        if ('skip' in out) {
          result.stillInvalid++;
          count(out.skip);
        } else {
          count(headerText(m.headers, '__connect.errors.exception.class.name')?.split('.').pop() ?? 'dead letter');
          batch.push(out);
        }
      } else {
        const out = fromRejected(m, partitions, encode);
        if ('invalid' in out) {
          result.stillInvalid++;
          count(`still invalid: ${out.invalid}`);
        } else {
          count('valid now');
          batch.push(out);
        }
      }
      if (handled >= batchRecords) {
        try {
          await checkpoint();
        } catch (err) {
          // Out of the consumer's hands, which would read the batch again:
          // the reading stops here, and the replay fails with the cause.
          failed = err;
          return false;
        }
      }
    });
    if (failed) throw sendFailure(failed, opts.topic);
    await checkpoint().catch((err) => {
      throw sendFailure(err, opts.topic);
    });
    // Each range to its end: offsets past the last record read (a transaction marker) are done too.
    await commit(ranges.map((r) => ({ partition: r.partition, offset: String(r.to) })));
    result.reasons = [...reasons].sort((a, b) => b[1] - a[1]);
    log(
      `${opts.source.topic}: ${result.pending} pending, ${result.sent} sent to ${opts.topic}, ${result.stillInvalid} still invalid, ${result.dropped} dropped`,
    );
    return result;
  } finally {
    // Leaving the group at once: the next replay need not wait for it to time out.
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

/** Kafka not taking the records, or the commit: what was acknowledged stays done. */
function sendFailure(err: unknown, topic: string) {
  return new UserError(
    `Kafka did not take the replay (${(err as Error).message}): check ${topic} and \`npm run platform:status\`, then replay again (what Kafka acknowledged is not sent again)`,
    { cause: err },
  );
}

/**
 * A line for each topic that stamps records as they arrive. A broker that
 * does not say (no right to describe configs) is taken at its default,
 * CreateTime: the check only warns.
 */
async function timestampWarnings(admin: Admin, topics: string[]) {
  const described = await admin
    .describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['message.timestamp.type'] })),
    })
    .catch(() => ({ resources: [] }));
  return appendTimeTopics(described).map(
    (topic) =>
      `${topic} stamps records as they arrive (message.timestamp.type=LogAppendTime): replayed records carry the time of the replay and overwrite newer values of their ids; set message.timestamp.type=CreateTime on ${topic}`,
  );
}
