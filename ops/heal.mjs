// @ts-check
// Transient outages heal with no person. While the schema registry does not
// answer, every record the sink converts fails and Connect dead-letters it
// (errors.tolerance=all): the watchdog pauses the sink instead, and resumes
// it once the registry answers. What was dead-lettered for a passing cause
// before the pause (the registry unreachable or failing, a refused
// connection) is sent back once the cause answers again; records refused for
// their content stay for a person.
import path from 'node:path';
import { connectApi } from '#lib/connect.mjs';
import { basicHeader, registryAuth } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';
import { createKafka, groupRange, headerText, kafkaClient, readRange, withKafkaAdmin } from '#lib/kafka.mjs';
import { acquireLock } from '#lib/lock.mjs';
import { withPg } from '#lib/pg.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * Why the registry cannot serve the sink's converter now, or null when it
 * answers. An answer that is not a server error (401, 404) is an answer: a
 * wrong setting is not a passing fault, and pausing would hide it.
 * @param {Config} config @param {typeof fetch} [get]
 */
export async function registryDown(config, get = fetch) {
  const auth = registryAuth(config);
  try {
    const res = await get(`${config.registry.ccompatUrl}/subjects`, {
      headers: auth ? { authorization: basicHeader(auth) } : {},
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer().catch(() => {});
    return res.status >= 500 ? `HTTP ${res.status}` : null;
  } catch (err) {
    const e = /** @type {Error & { cause?: { code?: string, message?: string } }} */ (err);
    return e.cause?.code ?? e.cause?.message ?? e.message;
  }
}

/**
 * Whether a dead letter's cause was a passing fault of the infrastructure
 * (the registry unreachable or failing, a connection refused or lost, a
 * timeout), from Connect's error headers; false for a record refused for its
 * content (bad bytes, an unknown schema, a value PostgreSQL refuses). Pure.
 * @param {{ stage?: string, cls?: string, message?: string }} error
 */
export function transientCause({ stage = '', cls = '', message = '' }) {
  // The watchdog's own quarantine: PostgreSQL refused this record's values.
  if (stage === 'TASK_PUT' && /PSQLException/.test(cls) && /^ERROR:/.test(message)) return false;
  const text = `${cls}: ${message}`;
  if (/RestClientException/.test(cls)) {
    // The registry answered that the schema does not exist: the record's, not the moment's.
    if (/\b4\d\d\b|not found|No (?:artifact|content|schema)|NotFound/i.test(message)) return false;
    return true;
  }
  return /Connection refused|ConnectException|UnknownHostException|SocketTimeoutException|I\/O error|timed out|\b50[0-4]\b|Service Unavailable|Connection reset/i.test(
    text,
  );
}

/** The sink's state as Connect says it: RUNNING, PAUSED, STOPPED, ... or null when unknown. @param {Config} config */
async function sinkState(config) {
  const { status, json } = await connectApi(config, 'GET', `/connectors/${encodeURIComponent(config.sink.connector)}/status`);
  return status === 200 ? String(json?.connector?.state ?? '') : null;
}

/**
 * @typedef {{ since: string, why: string }} Hold the sink paused by the watchdog while the registry was down
 * @typedef {{ hold?: Hold, healed?: { at: string, what: string }[] }} HealRecord
 */

/**
 * One turn: pauses the sink while the registry is down (only a sink that
 * runs: one a person paused or stopped is theirs), resumes it once the
 * registry answers (only a pause of ours). Returns a line to log, or null.
 * @param {Config} config @param {HealRecord} record changed in place; the caller saves it
 * @param {{ down?: (config: Config) => Promise<string | null> }} [probe]
 */
export async function holdForRegistry(config, record, { down = registryDown } = {}) {
  const why = await down(config);
  const name = config.sink.connector;
  const route = `/connectors/${encodeURIComponent(name)}`;
  if (why && !record.hold) {
    if ((await sinkState(config)) !== 'RUNNING') return null;
    await connectApi(config, 'PUT', `${route}/pause`);
    record.hold = { since: new Date().toISOString(), why };
    return `${name}: paused while the schema registry does not answer (${why}): records wait in Kafka instead of going to the dead letter queue`;
  }
  if (!why && record.hold) {
    const { since } = record.hold;
    if ((await sinkState(config)) === 'PAUSED') await connectApi(config, 'PUT', `${route}/resume`);
    delete record.hold;
    const what = `the schema registry answered again: ${name} resumed after ${Math.round((Date.now() - Date.parse(since)) / 1000)} s paused`;
    record.healed = [...(record.healed ?? []), { at: new Date().toISOString(), what }].slice(-20);
    return what;
  }
  return null;
}

/**
 * The headers a record had before it was dead-lettered: Connect's error
 * context and our own marks dropped, as `dlq:replay` sends it back. Pure.
 * @param {import('kafkajs').IHeaders | undefined} headers
 */
export function ownHeaders(headers) {
  return Object.fromEntries(
    Object.entries(headers ?? {}).filter(([name]) => !name.startsWith('__connect.errors.') && !name.startsWith('kafka-pg-pipeline.')),
  );
}

/**
 * Sends back what was dead-lettered for a passing cause, once the causes
 * answer: the dead letter queue's records the replay group has not handled,
 * each transient one to the partition it came from with its original
 * timestamp (the table keeps the newest version of an id, so an older one
 * never wins), each other one appended to the queue again, so it stays for
 * a person; then the replay group moves to the end. Under `dlq:replay`'s own
 * lock: a person's replay and this one never run at once. Returns a line to
 * log, or null when nothing was transient.
 * @param {Config} config @param {{ seen?: string }} memo the queue's ends last looked at: unchanged, nothing is read again
 */
export async function replayTransient(config, memo) {
  const { dlqTopic, topic, replayGroups } = config.pipeline;
  if (await registryDown(config)) return null;
  // PostgreSQL answers the sink's role (a dead letter of its I/O error would fail again).
  try {
    await withPg(config, 'sink', (db) => db.query('select 1'));
  } catch {
    return null;
  }
  return withKafkaAdmin(config, async (admin) => {
    if (!(await admin.listTopics()).includes(dlqTopic)) return null;
    const ranges = await groupRange(admin, dlqTopic, replayGroups.dlq);
    const seen = JSON.stringify(ranges.map((r) => [r.partition, r.from, r.to]));
    if (memo.seen === seen || ranges.every((r) => r.to <= r.from)) {
      memo.seen = seen;
      return null;
    }
    let lock;
    try {
      lock = await acquireLock(path.join(config.runDir, 'replay', `${dlqTopic}.lock`), { onBusy: 'fail', what: 'replay' });
    } catch (err) {
      if (err instanceof UserError) return null; // a person's replay runs: next turn
      throw err;
    }
    try {
      /** @type {import('kafkajs').KafkaMessage[]} */
      const back = [];
      /** @type {import('kafkajs').KafkaMessage[]} */
      const kept = [];
      await readRange(kafkaClient(config), dlqTopic, ranges, (m) => {
        const h = (/** @type {string} */ name) => headerText(m.headers, name) ?? '';
        const passing = transientCause({
          stage: h('__connect.errors.stage'),
          cls: h('__connect.errors.exception.class.name'),
          message: h('__connect.errors.exception.message'),
        });
        (passing && h('__connect.errors.topic') === topic ? back : kept).push(m);
      });
      if (back.length === 0) {
        memo.seen = seen;
        return null;
      }
      const producer = createKafka(kafkaClient(config), { clientId: 'kafka-pg-pipeline-watchdog' }).producer({ idempotent: true });
      await producer.connect();
      try {
        const partitionOf = (/** @type {import('kafkajs').KafkaMessage} */ m) => {
          const p = Number(headerText(m.headers, '__connect.errors.partition'));
          return Number.isInteger(p) && p >= 0 ? p : undefined;
        };
        for (let i = 0; i < back.length; i += 1000)
          await producer.send({
            topic,
            acks: -1,
            messages: back.slice(i, i + 1000).map((m) => ({
              key: m.key,
              value: m.value,
              timestamp: m.timestamp,
              partition: partitionOf(m),
              headers: ownHeaders(m.headers),
            })),
          });
        for (let i = 0; i < kept.length; i += 1000)
          await producer.send({
            topic: dlqTopic,
            acks: -1,
            messages: kept.slice(i, i + 1000).map((m) => ({
              key: m.key,
              value: m.value,
              timestamp: m.timestamp,
              headers: { ...(m.headers ?? {}), 'kafka-pg-pipeline.kept-by': 'watchdog' },
            })),
          });
      } finally {
        await producer.disconnect();
      }
      await admin.setOffsets({
        groupId: replayGroups.dlq,
        topic: dlqTopic,
        partitions: ranges.map((r) => ({ partition: r.partition, offset: String(r.to) })),
      });
      memo.seen = JSON.stringify((await groupRange(admin, dlqTopic, replayGroups.dlq)).map((r) => [r.partition, r.from, r.to]));
      return `sent back ${back.length} record(s) dead-lettered for a passing cause (the registry or a connection away), with their original timestamps${kept.length ? `; ${kept.length} refused for their content stay for a person` : ''}`;
    } finally {
      lock.release();
    }
  });
}
