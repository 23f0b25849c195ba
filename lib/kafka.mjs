// @ts-check
// Kafka clients, built one way: kafkajs with its log silenced or routed to
// a function of ours, so its internals never reach the terminal as if they
// were errors.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import kafkajs from 'kafkajs';
import { kafkaIdentity } from './credentials.mjs';
import { UserError } from './errors.mjs';
import { delay } from './procs.mjs';

/** @typedef {import('./config.mjs').Config} Config */
/** @typedef {{ brokers: string[], ssl?: import('node:tls').ConnectionOptions | boolean, sasl?: kafkajs.SASLOptions }} KafkaClient where and as whom a client connects */

/** @typedef {keyof Config['kafka']['users']} KafkaWho whose identity a client uses: admin, producer, connect or dashboard */

/**
 * The brokers, TLS trust and SASL identity of `who`, as kafkajs takes them.
 * @param {Config} config @param {KafkaWho} [who] @returns {KafkaClient}
 */
export function kafkaClient(config, who = 'admin') {
  const { security } = config.kafka;
  /** @type {KafkaClient} */
  const client = { brokers: config.kafka.brokers };
  if (security.tls) client.ssl = security.caFile ? { ca: [readCa(config, security.caFile)] } : true;
  if (security.sasl) {
    const { username, password } = kafkaIdentity(config, who);
    const mechanism = /** @type {'plain' | 'scram-sha-256' | 'scram-sha-512'} */ (security.mechanism.toLowerCase());
    client.sasl = /** @type {kafkajs.SASLOptions} */ ({ mechanism, username, password });
  }
  return client;
}

/** @param {Config} config @param {string} file */
function readCa(config, file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    // The local platform's own CA (KAFKA_SSL_CA_FILE unset) is made by `up`.
    const fix =
      config.platform === 'local' && file === path.join(config.stateDir, 'tls', 'ca.pem')
        ? '`npm run platform:up` creates it'
        : "set KAFKA_SSL_CA_FILE to the PEM file of the CA that signed your brokers' certificates";
    throw new UserError(`cannot read the Kafka CA file ${file} (${/** @type {NodeJS.ErrnoException} */ (err).code}): ${fix}`, {
      cause: err,
    });
  }
}

/** Node's codes for a certificate it does not trust. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * An error and the errors it wraps (kafkajs: originalError, or errors for
 * an aggregate such as "Topic creation errors"; Node: cause).
 * @param {unknown} err @param {number} [depth] @returns {Generator<any>}
 */
function* chain(err, depth = 0) {
  const e = /** @type {any} */ (err);
  if (!e || depth > 8) return;
  yield e;
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
  yield* chain(e.originalError ?? e.cause, depth + 1);
}

/**
 * What an error of a Kafka client means for the user, when it is one of
 * trust, credentials or rights: one line with the cause and the fix. Null
 * for anything else (a broker down, a timeout). Pure.
 * @param {unknown} err @param {string} [who] whose identity: admin (the scripts), producer or connect
 */
export function kafkaAccessProblem(err, who = 'admin') {
  const keys =
    who === 'admin'
      ? 'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD'
      : `KAFKA_${who.toUpperCase()}_SASL_USERNAME/_PASSWORD (or KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD)`;
  for (const e of chain(err)) {
    const message = String(e.message ?? '');
    if (e.name === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed/i.test(message))
      return `Kafka refused the ${who}'s credentials (${message}): check ${keys}, and KAFKA_SASL_MECHANISM`;
    if (UNTRUSTED.has(e.code) || /self[- ]signed certificate|unable to (verify|get local issuer)|certificate has expired/i.test(message))
      return `Kafka's TLS certificate is not trusted (${message}): set KAFKA_SSL_CA_FILE to the PEM file of the CA that signed the brokers' certificates`;
    if (/_AUTHORIZATION_FAILED$/.test(String(e.type ?? '')))
      return `Kafka denied the ${who} (${e.type}: ${message}): grant its user ACLs for the pipeline's topics and groups (README: "Run it on your cluster")`;
    if (e.code === 'EPROTO' || /wrong version number|packet length too long|disconnected before secure TLS connection/i.test(message))
      return `Kafka's listener does not speak TLS (${message}): set KAFKA_SECURITY_PROTOCOL to what the brokers' listener expects`;
  }
  return null;
}

/**
 * Fails at once, in the one line, when the first broker that answers shows a
 * certificate we do not trust: kafkajs takes that for a broker down and
 * retries for minutes. Brokers out of reach are left for kafkajs to report.
 * @param {KafkaClient} client @param {number} [timeoutMs]
 */
export async function checkTrust(client, timeoutMs = 3000) {
  if (!client.ssl) return;
  const options = client.ssl === true ? {} : client.ssl;
  for (const broker of client.brokers) {
    const at = broker.lastIndexOf(':');
    const host = broker.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(broker.slice(at + 1));
    /** @type {{ trusted: boolean } | { problem: string, cause: Error } | null} null: unreachable */
    const outcome = await new Promise((resolve) => {
      const socket = tls.connect({ ...options, host, port, ...(net.isIP(host) ? {} : { servername: host }) }, () => {
        socket.end();
        resolve({ trusted: true });
      });
      socket.setTimeout(timeoutMs, () => {
        socket.destroy();
        resolve(null);
      });
      // Not trusted, or no TLS at all on that port (a plaintext listener): both are the user's to fix.
      socket.on('error', (err) => {
        const problem = kafkaAccessProblem(err);
        resolve(problem ? { problem, cause: err } : null);
      });
    });
    if (outcome === null) continue;
    if ('problem' in outcome) throw new UserError(outcome.problem, { cause: outcome.cause });
    return;
  }
}

/**
 * @param {KafkaClient | string[]} client where (and as whom) it connects; a list of brokers means plaintext
 * @param {{ clientId?: string, log?: (line: string) => void, connectionTimeout?: number, requestTimeout?: number, retry?: kafkajs.RetryOptions }} [opts]
 *   log: where warnings go (none are shown without it)
 */
export function createKafka(client, { clientId = 'kafka-pg-pipeline', log, ...rest } = {}) {
  const { brokers, ssl, sasl } = Array.isArray(client) ? { brokers: client } : client;
  return new kafkajs.Kafka({
    clientId,
    brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
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

/** An admin client of the scripts, not connected. @param {Config} config @param {KafkaClient} [client] */
export function kafkaAdmin(config, client = kafkaClient(config)) {
  return createKafka(client, { clientId: 'kafka-pg-pipeline-scripts' }).admin();
}

/**
 * The one line for a Kafka client that could not connect: trust, credentials
 * or rights when it is one of those, else not reachable.
 * @param {Config} config @param {unknown} err @param {string} [who]
 */
export function kafkaConnectFailure(config, err, who = 'admin') {
  const fix = config.platform === 'local' ? 'run `npm run platform:up`' : 'check KAFKA_BOOTSTRAP_SERVERS and KAFKA_SECURITY_PROTOCOL';
  return (
    kafkaAccessProblem(err, who) ?? `Kafka is not reachable at ${config.kafka.bootstrap} (${/** @type {Error} */ (err).message}): ${fix}`
  );
}

/**
 * Connects an admin client, runs `fn`, disconnects. A broker out of reach
 * is a user error naming the fix. `who`: whose identity it uses, the admin
 * (a super user) unless a reader with rights of its own asks.
 * @template T @param {Config} config @param {(admin: kafkajs.Admin) => Promise<T>} fn
 * @param {{ who?: KafkaWho }} [opts] @returns {Promise<T>}
 */
export async function withKafkaAdmin(config, fn, { who = 'admin' } = {}) {
  const client = kafkaClient(config, who);
  await checkTrust(client);
  const admin = kafkaAdmin(config, client);
  try {
    await admin.connect();
  } catch (err) {
    throw new UserError(kafkaConnectFailure(config, err, who), { cause: err });
  }
  try {
    return await fn(admin);
  } catch (err) {
    const access = kafkaAccessProblem(err, who);
    throw access ? new UserError(access, { cause: err }) : err;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Creates a topic unless it exists and returns its partition count (an
 * existing topic keeps the count it has), once every partition has a leader.
 * replicationFactor: -1 leaves it (and min.insync.replicas) to the cluster.
 * @param {kafkajs.Admin} admin @param {string} topic @param {number} partitions
 * @param {{ timeoutMs?: number, replicationFactor?: number, minInsyncReplicas?: number }} [opts]
 */
export async function ensureTopic(admin, topic, partitions, { timeoutMs = 30_000, replicationFactor = 1, minInsyncReplicas = 1 } = {}) {
  const replication =
    replicationFactor > 0
      ? {
          replicationFactor,
          configEntries: minInsyncReplicas > 1 ? [{ name: 'min.insync.replicas', value: String(minInsyncReplicas) }] : [],
        }
      : {};
  // A topic just created may be unknown to the broker's metadata for a moment
  // ("This server does not host this topic-partition"): wait for its leaders.
  const settling = (/** @type {any} */ err) => ['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE'].includes(err?.type);
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, ...replication }], waitForLeaders: true });
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
 * false ends the reading there. timeoutMs bounds a stall (no batch for that
 * long), never the whole read.
 * @param {KafkaClient | string[]} brokers @param {string} topic
 * @param {{ partition: number, from: number, to: number }[]} ranges
 * @param {(message: kafkajs.KafkaMessage, partition: number) => unknown} onMessage
 * @param {{ timeoutMs?: number }} [opts]
 */
export async function readRange(brokers, topic, ranges, onMessage, { timeoutMs = 120_000 } = {}) {
  if (ranges.every((r) => r.to <= r.from)) return;
  const kafka = createKafka(brokers, { clientId: 'kafka-pg-pipeline-reader' });
  const groupId = `kafka-pg-pipeline-reader-${process.pid}-${Date.now()}`;
  const consumer = kafka.consumer({ groupId });
  try {
    await consumer.connect();
    await readAsMember(consumer, topic, ranges, onMessage, { timeoutMs });
  } finally {
    await consumer.disconnect().catch(() => {});
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => {})
      .finally(() => admin.disconnect());
  }
}

/**
 * Hands each message of `ranges` to `onMessage`, read by a connected
 * consumer as a member of its group (a caller that commits as the group
 * passes its own; readRange a throwaway one). Nothing is committed here.
 * `onMessage` returning false ends the reading; no batch for timeoutMs (Kafka
 * away) fails it, however long the read.
 * @param {kafkajs.Consumer} consumer @param {string} topic
 * @param {{ partition: number, from: number, to: number }[]} ranges
 * @param {(message: kafkajs.KafkaMessage, partition: number) => unknown} onMessage
 * @param {{ timeoutMs?: number }} [opts]
 */
export async function readAsMember(consumer, topic, ranges, onMessage, { timeoutMs = 120_000 } = {}) {
  const open = ranges.filter((r) => r.to > r.from);
  if (open.length === 0) return;
  const until = new Map(open.map((r) => [r.partition, r.to]));
  /** @type {(err?: unknown) => void} */
  let finish = () => {};
  const finished = new Promise((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve(undefined));
  });
  // A stall, not a length: a backlog of any size is read while batches keep coming.
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const watchStall = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () => finish(new UserError(`reading ${topic} got nothing for ${timeoutMs / 1000} s: is Kafka up? (\`npm run platform:status\`)`)),
      timeoutMs,
    );
  };
  watchStall();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        watchStall();
        const end = until.get(batch.partition);
        if (end === undefined) return;
        for (const message of batch.messages) {
          if (Number(message.offset) >= end) break;
          if ((await onMessage(message, batch.partition)) === false) {
            until.clear();
            finish();
            return;
          }
        }
        // A caller's work per message (a replay's sends) may take the time between two of kafkajs's own heartbeats.
        await heartbeat();
        if (Number(batch.lastOffset()) + 1 >= end) {
          until.delete(batch.partition);
          if (until.size === 0) finish();
        }
      },
    });
    for (const r of open) consumer.seek({ topic, partition: r.partition, offset: String(r.from) });
    await finished;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * How the topics we create are replicated: up to 3 copies and writes taken
 * by all but one on the local platform, the cluster's defaults elsewhere.
 * @param {Config} config
 */
export const topicReplication = (config) => ({
  replicationFactor: config.kafka.replicationFactor,
  minInsyncReplicas: config.kafka.minInsyncReplicas,
});
