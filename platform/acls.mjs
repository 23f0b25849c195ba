// @ts-check
// The local SASL_SSL cluster's ACLs: each component's user may touch its own
// topics and groups and nothing else; the admin (the scripts, the watchdog)
// is a super user. Creating an ACL that exists is a no-op, so `up` sets them
// every time.
import kafkajs from 'kafkajs';
import { UserError } from '#lib/errors.mjs';
import { kafkaAccessProblem, withKafkaAdmin } from '#lib/kafka.mjs';
import { delay } from '#lib/procs.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const { AclResourceTypes: R, AclOperationTypes: Op, ResourcePatternTypes: P, AclPermissionTypes } = kafkajs;

/**
 * The ACLs, as kafkajs takes them. Pure.
 * @param {Config} config @returns {kafkajs.AclEntry[]}
 */
export function pipelineAcls(config) {
  const { pipeline, sink, connect } = config;
  const producer = `User:${config.kafka.users.producer.username}`;
  const worker = `User:${config.kafka.users.connect.username}`;
  const dashboard = `User:${config.kafka.users.dashboard.username}`;
  /** @type {[string, number, string, number, number[]][]} principal, resource type, name, pattern, operations */
  const grants = [
    // The producer: creates and writes its topic and the rejected rows' topic.
    [producer, R.TOPIC, pipeline.topic, P.LITERAL, [Op.CREATE, Op.DESCRIBE, Op.WRITE]],
    [producer, R.TOPIC, pipeline.rejectedTopic, P.LITERAL, [Op.CREATE, Op.DESCRIBE, Op.WRITE]],
    [producer, R.CLUSTER, 'kafka-cluster', P.LITERAL, [Op.IDEMPOTENT_WRITE]],
    // Connect: its group and internal topics, the sink's group, reads the
    // topic, writes the dead letter queue.
    [worker, R.GROUP, connect.groupId, P.LITERAL, [Op.READ, Op.DESCRIBE]],
    [worker, R.TOPIC, `${connect.groupId}-`, P.PREFIXED, [Op.ALL]],
    [worker, R.GROUP, sink.group, P.LITERAL, [Op.READ, Op.DESCRIBE, Op.DELETE]],
    [worker, R.TOPIC, pipeline.topic, P.LITERAL, [Op.READ, Op.DESCRIBE]],
    [worker, R.TOPIC, pipeline.dlqTopic, P.LITERAL, [Op.CREATE, Op.DESCRIBE, Op.WRITE]],
    [worker, R.CLUSTER, 'kafka-cluster', P.LITERAL, [Op.IDEMPOTENT_WRITE, Op.DESCRIBE]],
    // The dashboard reads lag and the quarantines' backlog, and may change
    // nothing. Kafka asks DESCRIBE of a topic for Metadata (listTopics shows
    // only those) and ListOffsets (fetchTopicOffsets), and of a group for
    // FindCoordinator and OffsetFetch (fetchOffsets, which also wants the
    // topic's); none of these asks anything of the cluster.
    [dashboard, R.TOPIC, pipeline.topic, P.LITERAL, [Op.DESCRIBE]],
    [dashboard, R.TOPIC, pipeline.dlqTopic, P.LITERAL, [Op.DESCRIBE]],
    [dashboard, R.TOPIC, pipeline.rejectedTopic, P.LITERAL, [Op.DESCRIBE]],
    [dashboard, R.GROUP, sink.group, P.LITERAL, [Op.DESCRIBE]],
    [dashboard, R.GROUP, pipeline.replayGroups.dlq, P.LITERAL, [Op.DESCRIBE]],
    [dashboard, R.GROUP, pipeline.replayGroups.rejected, P.LITERAL, [Op.DESCRIBE]],
  ];
  return grants.flatMap(([principal, resourceType, resourceName, resourcePatternType, ops]) =>
    ops.map((operation) => ({
      principal,
      resourceType,
      resourceName,
      resourcePatternType,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    })),
  );
}

/**
 * Sets the ACLs, trying again while a node is still (re)starting: `up` runs
 * this when the last node is ready, and another node may be restarting then
 * (its metadata still names it, and kafkajs may ask it first).
 * @param {Config} config @param {{ timeoutMs?: number }} [opts]
 */
export async function applyAcls(config, { timeoutMs = config.readyTimeoutMs } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withKafkaAdmin(config, (admin) => admin.createAcls({ acl: pipelineAcls(config) }));
      return;
    } catch (err) {
      const access = kafkaAccessProblem(err);
      if (access) throw new UserError(`setting the cluster's ACLs: ${access}`, { cause: err });
      if (Date.now() > deadline)
        throw new UserError(
          `setting the cluster's ACLs failed for ${timeoutMs / 1000} s (${/** @type {Error} */ (err).message}): check the nodes with \`npm run platform:status\``,
          { cause: err },
        );
      await delay(500);
    }
  }
}
