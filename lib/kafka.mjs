// @ts-check
// Kafka clients, built one way: kafkajs with its log silenced or routed to
// a function of ours, so its internals never reach the terminal as if they
// were errors.
import kafkajs from 'kafkajs';
import { UserError } from './errors.mjs';
import { delay } from './procs.mjs';

/** @typedef {import('./config.mjs').Config} Config */

/**
 * @param {string[]} brokers
 * @param {{ clientId?: string, log?: (line: string) => void, connectionTimeout?: number, retry?: kafkajs.RetryOptions }} [opts]
 *   log: where warnings go (none are shown without it)
 */
export function createKafka(brokers, { clientId = 'kafka-pg-pipeline', log, ...rest } = {}) {
  return new kafkajs.Kafka({
    clientId,
    brokers,
    logLevel: log ? kafkajs.logLevel.WARN : kafkajs.logLevel.NOTHING,
    ...(log
      ? {
          logCreator:
            () =>
            ({ namespace, log: entry }) =>
              log(`kafka ${namespace}: ${entry.message}`),
        }
      : {}),
    ...rest,
  });
}

/**
 * A message header as text (its first value if repeated), undefined if absent.
 * @param {import('kafkajs').IHeaders | undefined} headers @param {string} name
 */
export function headerText(headers, name) {
  const v = headers?.[name];
  return v === undefined ? undefined : String(Array.isArray(v) ? v[0] : v);
}

/** An admin client of the scripts, not connected. @param {Config} config */
export function kafkaAdmin(config) {
  return createKafka([config.kafka.bootstrap], { clientId: 'kafka-pg-pipeline-scripts' }).admin();
}

/**
 * Connects an admin client, runs `fn`, disconnects. A broker out of reach
 * is a user error naming the fix.
 * @template T @param {Config} config @param {(admin: kafkajs.Admin) => Promise<T>} fn @returns {Promise<T>}
 */
export async function withKafkaAdmin(config, fn) {
  const admin = kafkaAdmin(config);
  try {
    await admin.connect();
  } catch (err) {
    throw new UserError(
      `Kafka is not reachable at ${config.kafka.bootstrap} (${/** @type {Error} */ (err).message}): run \`npm run platform:up\``,
      { cause: err },
    );
  }
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Creates a topic unless it exists and returns its partition count (an
 * existing topic keeps the count it has), once every partition has a leader.
 * @param {kafkajs.Admin} admin @param {string} topic @param {number} partitions @param {{ timeoutMs?: number }} [opts]
 */
export async function ensureTopic(admin, topic, partitions, { timeoutMs = 30_000 } = {}) {
  // A topic just created may be unknown to the broker's metadata for a moment
  // ("This server does not host this topic-partition"): wait for its leaders.
  const settling = (/** @type {any} */ err) => ['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE'].includes(err?.type);
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } catch (err) {
    if (!settling(err)) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const parts = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions;
      if (parts.length > 0 && parts.every((p) => p.leader >= 0)) return parts.length;
    } catch (err) {
      if (!settling(err) || Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline)
      throw new UserError(
        `topic ${topic} has no leader ${timeoutMs / 1000} s after it was created: is Kafka up? (\`npm run platform:status\`)`,
      );
    await delay(200);
  }
}

/**
 * Messages in a topic (sum of end offsets), 0 if it does not exist.
 * @param {kafkajs.Admin} admin @param {string} topic
 */
export async function topicSize(admin, topic) {
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } catch {
    return 0;
  }
}

/**
 * Where a group stands on a topic, partition by partition: `from`, its
 * committed offset (the low watermark where it has none, or where retention
 * removed what it had not read), `to`, the end offset, and `low`.
 * @param {kafkajs.Admin} admin @param {string} topic @param {string} groupId
 * @returns {Promise<{ partition: number, low: number, from: number, to: number }[]>}
 */
export async function groupRange(admin, topic, groupId) {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  return ends
    .map((p) => {
      const low = Number(p.low);
      const at = done.get(p.partition) ?? -1;
      return { partition: p.partition, low, from: Math.max(at, low), to: Number(p.high) };
    })
    .sort((a, b) => a.partition - b.partition);
}

/**
 * A consumer group's lag on a topic: the messages it has still to read.
 * @param {kafkajs.Admin} admin @param {string} topic @param {string} groupId
 */
export async function consumerLag(admin, topic, groupId) {
  return (await groupRange(admin, topic, groupId)).reduce((lag, r) => lag + r.to - r.from, 0);
}

/**
 * Reads the messages of `ranges` (per partition, `from` inclusive, `to`
 * exclusive) and hands each to `onMessage`, without committing anything:
 * a throwaway consumer group, deleted afterwards. `onMessage` returning
 * false ends the reading there.
 * @param {string[]} brokers @param {string} topic
 * @param {{ partition: number, from: number, to: number }[]} ranges
 * @param {(message: kafkajs.KafkaMessage, partition: number) => unknown} onMessage
 * @param {{ timeoutMs?: number }} [opts]
 */
export async function readRange(brokers, topic, ranges, onMessage, { timeoutMs = 120_000 } = {}) {
  const open = ranges.filter((r) => r.to > r.from);
  if (open.length === 0) return;
  const kafka = createKafka(brokers, { clientId: 'kafka-pg-pipeline-reader' });
  const groupId = `kafka-pg-pipeline-reader-${process.pid}-${Date.now()}`;
  const consumer = kafka.consumer({ groupId });
  const until = new Map(open.map((r) => [r.partition, r.to]));
  /** @type {(err?: unknown) => void} */
  let finish = () => {};
  const finished = new Promise((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve(undefined));
  });
  const timer = setTimeout(
    () => finish(new UserError(`reading ${topic} took over ${timeoutMs / 1000} s: is Kafka up? (\`npm run platform:status\`)`)),
    timeoutMs,
  );
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = until.get(batch.partition);
        if (end === undefined) return;
        for (const message of batch.messages) {
          const offset = Number(message.offset);
          if (offset >= end) break;
          if ((await onMessage(message, batch.partition)) === false) {
            until.clear();
            finish();
            return;
          }
          if (offset + 1 >= end) break;
        }
        if (Number(batch.messages.at(-1)?.offset ?? -1) + 1 >= end) {
          until.delete(batch.partition);
          if (until.size === 0) finish();
        }
      },
    });
    for (const r of open) consumer.seek({ topic, partition: r.partition, offset: String(r.from) });
    await finished;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => {});
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => {})
      .finally(() => admin.disconnect());
  }
}
