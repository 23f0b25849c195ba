// @ts-check
// The two quarantines: the sink's dead letter queue (records Connect could not
// convert or write) and the producer's rejected topic (rows that failed
// validation). What is pending is what `npm run dlq:replay` has not yet sent
// back (or dropped): its consumer group's offsets mark the rest as handled.
import { groupRange, headerText, kafkaClient, readRange } from '#lib/kafka.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('kafkajs').KafkaMessage} KafkaMessage */

/** @param {KafkaMessage} m @param {string} name */
const header = (m, name) => headerText(m.headers, name);

/** Why Connect dead-lettered a record, from the headers it adds. Pure. @param {KafkaMessage} m */
export function dlqReason(m) {
  const cls = header(m, '__connect.errors.exception.class.name')?.split('.').pop();
  const msg = header(m, '__connect.errors.exception.message');
  const stage = header(m, '__connect.errors.stage');
  const text = [stage, cls, msg].filter(Boolean).join(': ');
  return text.length > 160 ? `${text.slice(0, 157)}...` : text || 'no error headers';
}

/** Why the producer rejected a row (its `reason` header). Pure. @param {KafkaMessage} m */
export const rejectedReason = (m) => header(m, 'reason') ?? 'no reason header';

/**
 * Counts, the oldest record's time and the most frequent reasons among the
 * records of `topic` that `group` has not handled yet.
 * @param {Config} config @param {import('kafkajs').Admin} admin
 * @param {{ topic: string, group: string, reason: (m: KafkaMessage) => string }} q
 */
export async function pending(config, admin, { topic, group, reason }) {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) return { total: 0, pending: 0, oldestAt: null, reasons: [] };
  const ranges = await groupRange(admin, topic, group);
  const total = ranges.reduce((sum, r) => sum + r.to - r.low, 0);
  const count = ranges.reduce((sum, r) => sum + r.to - r.from, 0);
  /** @type {Map<string, number>} */
  const reasons = new Map();
  let oldest = Infinity;
  await readRange(kafkaClient(config), topic, ranges, (m) => {
    oldest = Math.min(oldest, Number(m.timestamp));
    const why = reason(m);
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  });
  return {
    total,
    pending: count,
    oldestAt: Number.isFinite(oldest) ? new Date(oldest) : null,
    reasons: [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 3),
  };
}

/** @param {Config} config */
export const quarantines = (config) => ({
  dlq: { topic: config.pipeline.dlqTopic, group: config.pipeline.replayGroups.dlq, reason: dlqReason },
  rejected: { topic: config.pipeline.rejectedTopic, group: config.pipeline.replayGroups.rejected, reason: rejectedReason },
});

/** "3 h", "12 min", "40 s". Pure. @param {number} ms */
export function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}
