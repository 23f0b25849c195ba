// Sends quarantined records back to the pipeline's topic once their cause is
// fixed: the sink's dead letter queue as the bytes Connect could not take,
// the producer's rejected rows validated again (those that pass now are
// encoded and sent; the others stay counted as still invalid). A consumer
// group per quarantine remembers how far replay got, so a second run sends
// nothing twice; a crash between a send and that commit resends, which the
// sink's upsert on id absorbs.
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { UserError } from '#lib/errors.mjs';
import { checkTrust, createKafka, groupRange, headerText, kafkaAccessProblem, readRange } from '#lib/kafka.mjs';
import type { KafkaClient } from '#lib/kafka.mjs';
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
  log?: (line: string) => void;
}

export interface ReplayResult {
  pending: number;
  sent: number;
  stillInvalid: number;
  dropped: number;
  reasons: [string, number][];
}

/** A dead letter as the record it was: its bytes, its partition, minus Connect's error headers. Pure. */
export function fromDeadLetter(m: KafkaMessage, topic: string): { message: Message; partition: number } | { skip: string } {
  const origin = headerText(m.headers, '__connect.errors.topic');
  if (origin !== undefined && origin !== topic) return { skip: `from topic ${origin}, not ${topic}` };
  const partition = Number(headerText(m.headers, '__connect.errors.partition'));
  const headers = Object.fromEntries(Object.entries(m.headers ?? {}).filter(([k]) => !k.startsWith('__connect.errors.')));
  return {
    message: { key: m.key, value: m.value, headers: headers as IHeaders },
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
  return { message: { key, value: encode(verdict.record) }, partition: partitionFor(key, partitions) };
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const log = opts.log ?? (() => {});
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
  try {
    const result: ReplayResult = { pending: 0, sent: 0, stillInvalid: 0, dropped: 0, reasons: [] };
    if (!(await admin.listTopics()).includes(opts.source.topic)) return result;
    const ranges = await groupRange(admin, opts.source.topic, opts.source.group);
    result.pending = ranges.reduce((sum, r) => sum + r.to - r.from, 0);
    if (result.pending === 0) return result;

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

    const reasons = new Map<string, number>();
    const count = (why: string) => reasons.set(why, (reasons.get(why) ?? 0) + 1);
    let batch: { message: Message; partition: number }[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      // kafkajs groups a send's messages by partition itself, keeping their order in each.
      const messages = batch.map(({ message, partition }) => ({
        ...message,
        partition: partition >= 0 && partition < partitions ? partition : partitionFor(message.key as Buffer, partitions),
      }));
      await producer.send({ topic: opts.topic, acks: -1, messages });
      result.sent += batch.length;
      batch = [];
    };
    await readRange(opts.kafka, opts.source.topic, ranges, async (m: KafkaMessage) => {
      if (opts.drop) {
        result.dropped++;
        return;
      }
      if (opts.source.kind === 'dlq') {
        const out = fromDeadLetter(m, opts.topic);
        if ('skip' in out) {
          result.stillInvalid++;
          count(out.skip);
          return;
        }
        count(headerText(m.headers, '__connect.errors.exception.class.name')?.split('.').pop() ?? 'dead letter');
        batch.push(out);
      } else {
        const out = fromRejected(m, partitions, encode);
        if ('invalid' in out) {
          result.stillInvalid++;
          count(`still invalid: ${out.invalid}`);
          return;
        }
        count('valid now');
        batch.push(out);
      }
      if (batch.length >= 1000) await flush();
    });
    await flush();
    // Only once every send is acknowledged: what is committed is done.
    await admin.setOffsets({
      groupId: opts.source.group,
      topic: opts.source.topic,
      partitions: ranges.map((r) => ({ partition: r.partition, offset: String(r.to) })),
    });
    result.reasons = [...reasons].sort((a, b) => b[1] - a[1]);
    log(
      `${opts.source.topic}: ${result.pending} pending, ${result.sent} sent to ${opts.topic}, ${result.stillInvalid} still invalid, ${result.dropped} dropped`,
    );
    return result;
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}
