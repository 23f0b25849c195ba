// @ts-check
// Kafka Connect: one distributed worker with the Debezium JDBC sink and the
// Apicurio Avro converter from the cache's plugin folder.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';
import { startDetached } from '#lib/procs.mjs';
import { requireJava } from './java.mjs';
import { digest, getJson, jvmFlags, kafkaLibs, log4jConfig, logFile, pidFile, pidFileProcess, toProperties } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

export const JDBC_SINK_CLASS = 'io.debezium.connector.jdbc.JdbcSinkConnector';
export const AVRO_CONVERTER_CLASS = 'io.apicurio.registry.utils.converter.AvroConverter';

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
  });
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
    PG_SINK_PASSWORD: config.pg.roles.sink.password,
    REGISTRY_PORT: String(config.registry.port),
    // The converter's registry API, wherever the worker runs (a compose service names it).
    REGISTRY_API_URL: `${config.registry.url}/apis/registry/v2`,
    TOPIC: config.pipeline.topic,
    DLQ_TOPIC: config.pipeline.dlqTopic,
  };
}

/** @param {Config} config */
export const connectorVariables = (config) => Object.keys(connectorEnv(config));

/** The only folder `${file:...}` placeholders may read. @param {Config} config */
export const secretsDir = (config) => path.join(config.stateDir, 'secrets');

/** The plugin classes the worker loaded. @param {Config} config */
export async function connectPlugins(config) {
  const plugins = await getJson(`${config.connect.url}/connector-plugins?connectorsOnly=false`);
  return Array.isArray(plugins) ? plugins.map((p) => String(p.class)) : [];
}

/** @param {Config} config @returns {Service} */
export function connectService(config) {
  const log = logFile(config, 'connect');
  return {
    name: 'connect',
    address: config.connect.url,
    ports: [{ key: 'CONNECT_PORT', port: config.connect.port }],
    logFile: log,
    hint: 'Connect needs Kafka and the plugins under .local/connect-plugins; `npm run platform:fetch -- --refresh` fetches them again',
    after: ['kafka'],
    ...pidFileProcess(config, 'connect'),
    fingerprint: () => digest(connectWorkerProperties(config), JSON.stringify(connectEnv(config)), config.connect.heap),
    async start() {
      const java = requireJava(17);
      if (!fs.existsSync(pluginDir(config))) throw new UserError(`${pluginDir(config)} is missing: run \`npm run platform:fetch\``);
      const props = path.join(config.runDir, 'connect.properties');
      fs.mkdirSync(config.runDir, { recursive: true });
      fs.mkdirSync(secretsDir(config), { recursive: true, mode: 0o700 });
      fs.writeFileSync(props, connectWorkerProperties(config));
      startDetached({
        cmd: java,
        args: [
          ...jvmFlags(config, 'connect', config.connect.heap),
          // Converters and clients may not bring config providers of their own
          // (value.converter.config.providers=...): only the worker's above count.
          '-Dorg.apache.kafka.automatic.config.providers=none',
          `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
          '-cp',
          kafkaLibs(config),
          'org.apache.kafka.connect.cli.ConnectDistributed',
          props,
        ],
        env: connectEnv(config),
        logFile: log,
        pidFile: pidFile(config, 'connect'),
      });
    },
    ready: async () => {
      const plugins = await connectPlugins(config);
      return plugins.includes(JDBC_SINK_CLASS) && plugins.includes(AVRO_CONVERTER_CLASS);
    },
  };
}
