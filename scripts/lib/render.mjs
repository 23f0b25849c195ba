// @ts-check
// Config files of the services, rendered from `config` alone: pure functions,
// unit-tested, rewritten on every `up` so an edit to .env always takes effect.
import crypto from 'node:crypto';
import path from 'node:path';

/** @typedef {import('./env.mjs').Config} Config */

/** @param {Record<string, string | number | boolean>} props */
export function toProperties(props) {
  return Object.entries(props)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')
    .concat('\n');
}

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

/** @param {Config} config */
export const kafkaLogDir = (config) => path.join(config.dataDir, 'kafka');
/** @param {Config} config */
export const pgDataDir = (config) => path.join(config.dataDir, 'postgres');
/** @param {Config} config */
export const pluginDir = (config) => path.join(config.cacheDir, 'connect-plugins');

/** A distributed worker (so connectors are managed over REST) of one. @param {Config} config */
export function connectWorkerProperties(config) {
  const { port, groupId } = config.connect;
  return toProperties({
    'bootstrap.servers': config.kafka.bootstrap,
    'group.id': groupId,
    'config.storage.topic': `${groupId}-configs`,
    'offset.storage.topic': `${groupId}-offsets`,
    'status.storage.topic': `${groupId}-status`,
    'config.storage.replication.factor': 1,
    'offset.storage.replication.factor': 1,
    'status.storage.replication.factor': 1,
    'offset.storage.partitions': 5,
    'status.storage.partitions': 1,
    // Connectors name their own converters; these only apply to ones that do not.
    'key.converter': 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter.schemas.enable': false,
    listeners: `http://127.0.0.1:${port}`,
    'rest.advertised.host.name': '127.0.0.1',
    'rest.advertised.port': port,
    'plugin.path': pluginDir(config),
    // ServiceLoader manifests only, no reflective scan of every plugin jar
    // (platform/pom.xml adds the one the Apicurio converter lacks).
    'plugin.discovery': 'service_load',
    // Secrets reach connector configs as ${env:VAR} or ${file:path:key}, never as literals.
    'config.providers': 'env,file',
    'config.providers.env.class': 'org.apache.kafka.common.config.provider.EnvVarConfigProvider',
    'config.providers.file.class': 'org.apache.kafka.common.config.provider.FileConfigProvider',
    // Lets a connector tune its own consumer (batch sizes) with consumer.override.*.
    'connector.client.config.override.policy': 'All',
    // Sink offsets are committed this often: it bounds how stale `npm run status` lag can be.
    'offset.flush.interval.ms': 1000,
    // A worker that died hands its tasks on after this delay (default 5 min):
    // long enough for a quick restart to take them back, short enough to fail over.
    'scheduled.rebalance.max.delay.ms': 10000,
  });
}

/** Settings appended to the cluster's postgresql.conf through an include. @param {Config} config */
export function postgresConf(config) {
  const lines = {
    listen_addresses: `'${config.pg.host}'`,
    port: config.pg.port,
    // TCP only: no socket file to collide with a system server or to secure.
    unix_socket_directories: "''",
    shared_preload_libraries: "'pg_cron'",
    'cron.database_name': `'${config.pg.database}'`,
    // Jobs run in background workers, not over a libpq connection that would
    // need a password or a trust rule on our non-default port.
    'cron.use_background_workers': 'on',
    max_worker_processes: 16,
    max_connections: 100,
    shared_buffers: "'256MB'",
    password_encryption: "'scram-sha-256'",
    log_line_prefix: "'%m [%p] %q%u@%d '",
  };
  return Object.entries(lines)
    .map(([key, value]) => `${key} = ${value}`)
    .join('\n')
    .concat('\n');
}

/** Loopback only, passwords always. */
export const PG_HBA = [
  '# kafka-pg-pipeline: TCP on loopback with passwords, nothing else.',
  'host all all 127.0.0.1/32 scram-sha-256',
  '',
].join('\n');

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

/**
 * Parses `java -version` output (which goes to stderr) into a major version.
 * @param {string} text
 */
export function javaMajor(text) {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return null;
  const major = Number(match[1]);
  // Java 8 and older report "1.8.0_x".
  return major === 1 ? Number(match[2]) : major;
}

/**
 * Picks the newest JDK at least `min` from a list of { home, release } where
 * release is the text of the JDK's `release` file.
 * @param {{ home: string, release: string }[]} jdks @param {number} min
 */
export function pickJdk(jdks, min) {
  return jdks
    .map(({ home, release }) => ({ home, major: Number(/JAVA_VERSION="(\d+)/.exec(release)?.[1] ?? 0) }))
    .filter((jdk) => jdk.major >= min)
    .sort((a, b) => b.major - a.major)[0];
}

/**
 * Renders rows as an aligned text table.
 * @param {string[]} header @param {string[][]} rows
 */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (/** @type {string[]} */ cells) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
