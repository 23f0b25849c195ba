// @ts-check
// Kafka Connect: distributed workers of one group (one by default, two in the
// production shape) with the Debezium JDBC sink and the Apicurio Avro
// converter from the cache's plugin folder. With SASL_SSL the worker's
// clients log in as the connect user and its REST API asks for basic auth.
import fs from 'node:fs';
import path from 'node:path';
import { basicHeader, connectIdentity, kafkaIdentity, pgPassword } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';
import { startDetached } from '#lib/procs.mjs';
import { requireJava } from './java.mjs';
import { saslJaas } from './kafka.mjs';
import {
  digest,
  getJson,
  COLLECTORS,
  jvmFlags,
  kafkaLibs,
  log4jConfig,
  logFile,
  pidFile,
  pidFileProcess,
  toProperties,
  writePrivate,
} from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

export const JDBC_SINK_CLASS = 'io.debezium.connector.jdbc.JdbcSinkConnector';
export const AVRO_CONVERTER_CLASS = 'io.apicurio.registry.utils.converter.AvroConverter';

/** @param {Config} config */
export const pluginDir = (config) => path.join(config.cacheDir, 'connect-plugins');

/** @typedef {{ name: string, port: number }} Worker */

/** The local workers: connect on CONNECT_PORT, connect-2 on the next port, ... @param {Config} config @returns {Worker[]} */
export const connectWorkers = (config) =>
  Array.from({ length: config.connect.workers }, (_, i) => ({
    name: i === 0 ? 'connect' : `connect-${i + 1}`,
    port: config.connect.port + i,
  }));

/**
 * A distributed worker (so connectors are managed over REST).
 * @param {Config} config @param {Worker} [worker]
 */
export function connectWorkerProperties(config, worker = connectWorkers(config)[0]) {
  const { groupId } = config.connect;
  const { port } = worker;
  const rf = config.kafka.replicationFactor;
  return toProperties({
    'bootstrap.servers': config.kafka.bootstrap,
    ...workerSecurity(config),
    'group.id': groupId,
    'config.storage.topic': `${groupId}-configs`,
    'offset.storage.topic': `${groupId}-offsets`,
    'status.storage.topic': `${groupId}-status`,
    // -1: the cluster's default (an external cluster); locally up to 3.
    'config.storage.replication.factor': rf,
    'offset.storage.replication.factor': rf,
    'status.storage.replication.factor': rf,
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
    // Secrets reach connector configs as ${env:VAR} or ${file:path:key}, never
    // as literals. Anyone on the host can PUT a connector config, so the
    // providers resolve only the project's own variables (connectEnv) and files
    // in its secrets folder: a config naming another variable or file gets the
    // placeholder back as text, never the value.
    'config.providers': 'env,file',
    'config.providers.env.class': 'org.apache.kafka.common.config.provider.EnvVarConfigProvider',
    'config.providers.env.param.allowlist.pattern': connectorVariables(config).join('|'),
    'config.providers.file.class': 'org.apache.kafka.common.config.provider.FileConfigProvider',
    'config.providers.file.param.allowed.paths': secretsDir(config),
    // Lets a connector tune its own consumer (batch sizes, poll interval) with
    // consumer.override.*, and nothing else of its clients.
    'connector.client.config.override.policy': 'Allowlist',
    'connector.client.config.override.allowlist': 'max.poll.records,fetch.min.bytes,max.poll.interval.ms',
    // Sink offsets are committed this often: it bounds how stale `npm run status` lag can be.
    'offset.flush.interval.ms': 1000,
    // A worker that died hands its tasks on after this delay (default 5 min):
    // long enough for a quick restart to take them back, short enough to fail over.
    'scheduled.rebalance.max.delay.ms': 10000,
    ...(config.connect.auth
      ? { 'rest.extension.classes': 'org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension' }
      : {}),
  });
}

/**
 * The worker's clients (its own, the sinks' consumers, the dead letter
 * queue's producer and admin) on SASL_SSL as the connect user.
 * @param {Config} config
 */
function workerSecurity(config) {
  const { security } = config.kafka;
  if (security.protocol === 'PLAINTEXT') return {};
  /** @type {Record<string, string>} */
  const client = { 'security.protocol': security.protocol };
  if (security.sasl) {
    client['sasl.mechanism'] = security.mechanism;
    const who = kafkaIdentity(config, 'connect', { create: config.platform === 'local' });
    client['sasl.jaas.config'] = saslJaas(security.mechanism, who);
  }
  if (security.tls && security.caFile) {
    client['ssl.truststore.type'] = 'PEM';
    client['ssl.truststore.location'] = security.caFile;
  }
  return Object.fromEntries(
    ['', 'producer.', 'consumer.', 'admin.'].flatMap((prefix) => Object.entries(client).map(([k, v]) => [`${prefix}${k}`, v])),
  );
}

/** The REST API's users, as the basic-auth extension's PropertyFileLoginModule reads them. @param {Config} config */
function restUsers(config) {
  const who = connectIdentity(config, { create: true });
  // A properties file: a backslash in a given password is doubled to stay one.
  return who ? `${who.username}: ${who.password.replaceAll('\\', '\\\\')}\n` : '';
}

/**
 * The worker's environment: exactly what connector configs may name as
 * ${env:VAR}, so connect/*.json holds placeholders and never a password, and
 * the names it uses (topics) come from .env like everyone else's.
 * @param {Config} config
 */
export function connectEnv(config) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...connectorEnv(config),
  };
}

/** The variables connector configs may name. @param {Config} config */
function connectorEnv(config) {
  return {
    PG_HOST: config.pg.host,
    PG_PORT: String(config.pg.port),
    PG_DATABASE: config.pg.database,
    PG_SINK_PASSWORD: pgPassword(config, 'sink', { create: true }),
    PG_SSLMODE: config.pg.sslmode,
    REGISTRY_PORT: String(config.registry.port),
    // The converter's registry API, wherever the worker runs (a compose service names it).
    REGISTRY_API_URL: `${config.registry.url}/apis/registry/v2`,
    TOPIC: config.pipeline.topic,
    DLQ_TOPIC: config.pipeline.dlqTopic,
  };
}

/** The variables connector configs may name (the keys of connectorEnv, without reading a secret). */
const CONNECTOR_VARIABLES = [
  'PG_HOST',
  'PG_PORT',
  'PG_DATABASE',
  'PG_SINK_PASSWORD',
  'PG_SSLMODE',
  'REGISTRY_PORT',
  'REGISTRY_API_URL',
  'TOPIC',
  'DLQ_TOPIC',
];

/** @param {Config} _config */
export const connectorVariables = (_config) => CONNECTOR_VARIABLES;

/** The only folder `${file:...}` placeholders may read. @param {Config} config */
export const secretsDir = (config) => path.join(config.stateDir, 'secrets');

/** The plugin classes the worker loaded. @param {Config} config @param {string} [url] one worker's */
export async function connectPlugins(config, url = config.connect.url) {
  const who = connectIdentity(config);
  const plugins = await getJson(`${url}/connector-plugins?connectorsOnly=false`, who ? { authorization: basicHeader(who) } : {});
  return Array.isArray(plugins) ? plugins.map((p) => String(p.class)) : [];
}

/** The local workers, one service each. @param {Config} config @returns {Service[]} */
export function connectServices(config) {
  return connectWorkers(config).map((worker) => connectService(config, worker));
}

/** @param {Config} config @param {Worker} worker @returns {Service} */
function connectService(config, worker) {
  const log = logFile(config, worker.name);
  const first = worker.name === 'connect';
  const url = `http://127.0.0.1:${worker.port}`;
  const secure = Boolean(config.connect.auth);
  // The JVM's flags, fingerprinted and started with: a change of collector restarts it.
  const jvm = jvmFlags(config, worker.name, config.connect.heap, COLLECTORS.throughput);
  return {
    name: worker.name,
    address: url,
    ports: [{ key: first ? 'CONNECT_PORT' : `CONNECT_PORT (+${worker.port - config.connect.port})`, port: worker.port }],
    logFile: log,
    hint: 'Connect needs Kafka and the plugins under .local/connect-plugins; `npm run platform:fetch -- --refresh` fetches them again',
    after: config.kafka.nodes.map((n) => n.name),
    ...pidFileProcess(config, worker.name),
    fingerprint: () =>
      digest(connectWorkerProperties(config, worker), JSON.stringify(connectEnv(config)), jvm.join(' '), secure ? restUsers(config) : ''),
    async start() {
      const java = requireJava(17);
      if (!fs.existsSync(pluginDir(config))) throw new UserError(`${pluginDir(config)} is missing: run \`npm run platform:fetch\``);
      const props = path.join(config.runDir, `${worker.name}.properties`);
      fs.mkdirSync(config.runDir, { recursive: true });
      fs.mkdirSync(secretsDir(config), { recursive: true, mode: 0o700 });
      // The owner's only: with SASL it holds the connect user's password.
      writePrivate(props, connectWorkerProperties(config, worker));
      /** @type {string[]} */
      const auth = [];
      if (secure) {
        const users = path.join(config.runDir, 'connect-rest-users.properties');
        writePrivate(users, restUsers(config));
        const jaas = path.join(config.runDir, 'connect-rest.jaas');
        fs.writeFileSync(
          jaas,
          `KafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file=${JSON.stringify(users)};\n};\n`,
        );
        auth.push(`-Djava.security.auth.login.config=${jaas}`);
      }
      startDetached({
        cmd: java,
        args: [
          ...jvm,
          // Converters and clients may not bring config providers of their own
          // (value.converter.config.providers=...): only the worker's above count.
          '-Dorg.apache.kafka.automatic.config.providers=none',
          `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
          ...auth,
          '-cp',
          kafkaLibs(config),
          'org.apache.kafka.connect.cli.ConnectDistributed',
          props,
        ],
        env: connectEnv(config),
        logFile: log,
        pidFile: pidFile(config, worker.name),
      });
    },
    ready: async () => {
      const plugins = await connectPlugins(config, url);
      return plugins.includes(JDBC_SINK_CLASS) && plugins.includes(AVRO_CONVERTER_CLASS);
    },
  };
}
