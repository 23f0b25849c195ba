// @ts-check
// The one place configuration is read. `.env` holds committed local defaults;
// the process environment overrides any of them. Everything else imports
// `config` from here instead of touching process.env.
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './errors.mjs';

export { ConfigError };

/**
 * The repository. Everything imports this file as `#lib/config.mjs` (package.json
 * "imports"), which Node resolves to this source file from dist/ too.
 */
export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

/** The JDBC sink connector: connect/synthetic-data-sink.json. */
export const SINK_CONNECTOR = 'synthetic-data-sink';

/**
 * Merges the .env defaults with the environment and checks types.
 * Pure, so tests can feed it any pair of maps.
 * @param {Record<string, string | undefined>} defaults
 * @param {Record<string, string | undefined>} env
 * @param {string} root
 */
export function buildConfig(defaults, env, root) {
  /** @param {string} key */
  const str = (key) => {
    const value = env[key] ?? defaults[key];
    if (value === undefined) throw new ConfigError(`${key} is not set: add it to .env or the environment`);
    return value;
  };
  /** @param {string} key */
  const port = (key) => {
    const raw = str(key);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      throw new ConfigError(`${key}=${raw} is not a TCP port: set it to a number from 1 to 65535 in .env or the environment`);
    }
    return n;
  };
  /** @param {string} key */
  const seconds = (key) => {
    const raw = str(key);
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`${key}=${raw} is not a positive number of seconds`);
    return n;
  };

  /** @param {string} key */
  const count = (key) => {
    const raw = str(key);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${key}=${raw} is not a positive integer: fix it in .env or the environment`);
    return n;
  };

  const cacheDir = path.resolve(root, str('CACHE_DIR'));
  const stateDir = path.resolve(root, env.STATE_DIR || defaults.STATE_DIR || str('CACHE_DIR'));
  const kafkaHost = str('KAFKA_HOST');
  const pgHost = str('PG_HOST');
  // Endpoints named as Confluent's clients name them; unset, the local
  // platform's on 127.0.0.1 (inside the compose network they name services).
  /** @param {string} key */
  const url = (key) => {
    const raw = env[key] || defaults[key];
    if (!raw) return null;
    if (!/^https?:\/\/[^/\s]+/.test(raw)) throw new ConfigError(`${key}=${raw} is not an http(s) URL: fix it in .env or the environment`);
    return raw.replace(/\/+$/, '');
  };
  const registryCcompat = url('SCHEMA_REGISTRY_URL') ?? `http://127.0.0.1:${port('REGISTRY_PORT')}/apis/ccompat/v7`;
  const config = {
    root,
    /** Downloads: what `platform:fetch` puts there is never changed by running. */
    cacheDir,
    /** What running creates: data, generated configs, pid files, logs. */
    stateDir,
    runDir: path.join(stateDir, 'run'),
    logDir: path.join(stateDir, 'logs'),
    dataDir: path.join(stateDir, 'data'),
    readyTimeoutMs: seconds('READY_TIMEOUT_S') * 1000,
    kafka: {
      host: kafkaHost,
      port: port('KAFKA_PORT'),
      controllerPort: port('KAFKA_CONTROLLER_PORT'),
      heap: str('KAFKA_HEAP'),
      bootstrap: env.KAFKA_BOOTSTRAP_SERVERS || defaults.KAFKA_BOOTSTRAP_SERVERS || `${kafkaHost}:${port('KAFKA_PORT')}`,
    },
    registry: {
      host: '127.0.0.1',
      port: port('REGISTRY_PORT'),
      managementPort: port('REGISTRY_MANAGEMENT_PORT'),
      heap: str('REGISTRY_HEAP'),
      javaHome: env.REGISTRY_JAVA_HOME || defaults.REGISTRY_JAVA_HOME || '',
      /** The registry's own root: its v2 API (which the Connect converter reads) lives under it. */
      url: registryCcompat.replace(/\/apis\/ccompat\/v\d+$/, ''),
      ccompatUrl: registryCcompat,
      database: str('REGISTRY_DB'),
      user: str('REGISTRY_DB_USER'),
      password: str('REGISTRY_DB_PASSWORD'),
    },
    connect: {
      host: '127.0.0.1',
      port: port('CONNECT_PORT'),
      heap: str('CONNECT_HEAP'),
      groupId: str('CONNECT_GROUP_ID'),
      url: url('CONNECT_URL') ?? `http://127.0.0.1:${port('CONNECT_PORT')}`,
    },
    dashboard: {
      /** 127.0.0.1 natively; a container listens on all its interfaces, published on the host's loopback. */
      host: env.DASHBOARD_HOST || defaults.DASHBOARD_HOST || '127.0.0.1',
      port: port('DASHBOARD_PORT'),
      url: `http://127.0.0.1:${port('DASHBOARD_PORT')}`,
    },
    sink: {
      /** The connector's name is its file's: connect/<name>.json. */
      connector: SINK_CONNECTOR,
      /** Connect names a sink's consumer group after the connector. */
      group: `connect-${SINK_CONNECTOR}`,
    },
    pipeline: {
      topic: str('TOPIC'),
      rejectedTopic: str('REJECTED_TOPIC'),
      /** Where the sink dead-letters what it cannot convert or write. */
      dlqTopic: str('DLQ_TOPIC'),
      /** `npm run dlq:replay` commits here how far it has sent each quarantine back. */
      replayGroups: { dlq: `${str('DLQ_TOPIC')}-replay`, rejected: `${str('REJECTED_TOPIC')}-replay` },
      /** TopicNameStrategy, as every Confluent-compatible client expects. */
      subject: `${str('TOPIC')}-value`,
      partitions: count('TOPIC_PARTITIONS'),
    },
    datasetFile: path.resolve(root, str('DATASET_FILE')),
    producer: {
      compression: str('PRODUCER_COMPRESSION'),
      /** Rows encoded and sent as one unit; the checkpoint moves by these. */
      chunkRows: count('PRODUCER_CHUNK_ROWS'),
      /** Messages per produce request to one partition. */
      batchMessages: count('PRODUCER_BATCH_MESSAGES'),
    },
    pg: {
      host: pgHost,
      port: port('PG_PORT'),
      database: str('PG_DATABASE'),
      adminUser: str('PG_ADMIN_USER'),
      adminPassword: str('PG_ADMIN_PASSWORD'),
      binDir: str('PG_BIN_DIR'),
      /** Role names are fixed by migrations/; only their passwords are configuration. */
      roles: {
        sink: { user: 'pipeline_sink', password: str('PG_SINK_PASSWORD') },
        etl: { user: 'pipeline_etl', password: str('PG_ETL_PASSWORD') },
        reader: { user: 'pipeline_reader', password: str('PG_READER_PASSWORD') },
      },
    },
  };
  return config;
}

/** @typedef {ReturnType<typeof buildConfig>} Config */

/** @param {string} root */
export function loadConfig(root = ROOT, env = process.env) {
  /** @type {Record<string, string | undefined>} */
  let defaults = {};
  try {
    defaults = parseEnv(readFileSync(path.join(root, '.env'), 'utf8'));
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
  }
  return buildConfig(defaults, env, root);
}

/**
 * The configuration, read once when first imported. A bad value ends the
 * process here with the one line that names it: nothing can run without it.
 */
export const config = (() => {
  try {
    return loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
})();
