// @ts-check
// Kafka: one KRaft node, broker and controller in one JVM, loopback only.
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';
import { createKafka } from '#lib/kafka.mjs';
import { readText, startDetached } from '#lib/procs.mjs';
import { requireJava } from './java.mjs';
import { dataDir, digest, jvmFlags, kafkaLibs, log4jConfig, logFile, pidFile, pidFileProcess, toProperties } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

/** @param {Config} config */
export const kafkaLogDir = (config) => dataDir(config, 'kafka');

/** One KRaft node, broker and controller in one JVM, loopback only. @param {Config} config */
export function kafkaServerProperties(config) {
  const { host, port, controllerPort } = config.kafka;
  return toProperties({
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@${host}:${controllerPort}`,
    listeners: `PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${host}:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': kafkaLogDir(config),
    // Topics created on first use get as many partitions as the pipeline's.
    'num.partitions': config.pipeline.partitions,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    // One member per group locally: rebalancing need not wait for more.
    'group.initial.rebalance.delay.ms': 0,
  });
}

/**
 * A KRaft cluster id: 16 random bytes, base64url without padding, as Kafka's
 * Uuid.randomUuid() makes them (never starting with '-', which the CLI would
 * take for an option).
 */
export function kafkaClusterId(random = () => crypto.randomBytes(16)) {
  for (;;) {
    const id = random().toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** @param {Config} config @returns {Service} */
export function kafkaService(config) {
  const log = logFile(config, 'kafka');
  return {
    name: 'kafka',
    address: config.kafka.bootstrap,
    ports: [
      { key: 'KAFKA_PORT', port: config.kafka.port },
      { key: 'KAFKA_CONTROLLER_PORT', port: config.kafka.controllerPort },
    ],
    logFile: log,
    hint: 'if the log says the cluster id or the meta.properties do not match, the data folder belongs to another cluster: `npm run platform:down -- --purge`',
    after: [],
    check: () => {
      kafkaCheck(config);
    },
    ...pidFileProcess(config, 'kafka'),
    fingerprint: () => digest(kafkaServerProperties(config), config.kafka.heap),
    async start() {
      const java = requireJava(17);
      kafkaInit(config, java);
      startDetached({
        cmd: java,
        args: [
          ...jvmFlags(config, 'kafka', config.kafka.heap),
          `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
          '-cp',
          kafkaLibs(config),
          'kafka.Kafka',
          path.join(config.runDir, 'kafka.properties'),
        ],
        logFile: log,
        pidFile: pidFile(config, 'kafka'),
      });
    },
    ready: () => kafkaPing(config),
  };
}

/**
 * A log folder of another node or another Kafka fails `up` before anything starts.
 * @param {Config} config @returns {boolean} whether the folder is formatted
 */
function kafkaCheck(config) {
  const logDir = kafkaLogDir(config);
  const meta = readText(path.join(logDir, 'meta.properties'));
  if (meta !== undefined) {
    const nodeId = /node\.id=(\d+)/.exec(meta)?.[1];
    if (nodeId !== '1' || !/cluster\.id=\S+/.test(meta)) {
      throw new UserError(
        `${logDir} was formatted for another Kafka node or version (node.id=${nodeId}): run \`npm run platform:down -- --purge\` to start afresh`,
      );
    }
    return true;
  }
  if (fs.existsSync(logDir) && fs.readdirSync(logDir).length > 0) {
    throw new UserError(
      `${logDir} holds data but no meta.properties: it is not a Kafka 4 log folder; run \`npm run platform:down -- --purge\``,
    );
  }
  return false;
}

/** Writes the broker's config and formats its storage on first start only. @param {Config} config @param {string} java */
function kafkaInit(config, java) {
  const props = path.join(config.runDir, 'kafka.properties');
  fs.writeFileSync(props, kafkaServerProperties(config));
  if (kafkaCheck(config)) return;
  const res = spawnSync(
    java,
    [
      '-cp',
      kafkaLibs(config),
      `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      kafkaClusterId(),
      '-c',
      props,
      '--ignore-formatted',
    ],
    { encoding: 'utf8' },
  );
  if (res.status !== 0) throw new UserError(`formatting Kafka storage failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
}

/** @param {Config} config */
async function kafkaPing(config) {
  const admin = createKafka([config.kafka.bootstrap], {
    clientId: 'platform-probe',
    connectionTimeout: 1000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
