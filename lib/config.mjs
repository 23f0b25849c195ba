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
    const value = checkedValue(key, env[key] ?? defaults[key]);
    if (value === undefined) throw new ConfigError(`${key} is not set: add it to .env or the environment`);
    return value;
  };
  /** A value written into a properties or conf file: no quote or backslash to break out of it. @param {string} key */
  const plain = (key) => plainValue(key, str(key));
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

  /** An optional key: unset and empty are the same. @param {string} key */
  const opt = (key) => {
    const value = checkedValue(key, env[key] ?? defaults[key]);
    return value === undefined || value === '' ? undefined : value;
  };
  /** @template {string} T @param {string} key @param {readonly T[]} allowed @param {T} fallback @returns {T} */
  const oneOf = (key, allowed, fallback) => {
    const raw = opt(key);
    if (raw === undefined) return fallback;
    const found = allowed.find((a) => a.toLowerCase() === raw.toLowerCase());
    if (!found) throw new ConfigError(`${key}=${raw} is not one of ${allowed.join(', ')}: fix it in .env or the environment`);
    return found;
  };

  const cacheDir = path.resolve(root, plain('CACHE_DIR'));
  const stateDir = path.resolve(root, opt('STATE_DIR') === undefined ? plain('CACHE_DIR') : plain('STATE_DIR'));
  const kafkaHost = plain('KAFKA_HOST');
  const pgHost = plain('PG_HOST');
  const platform = oneOf('PLATFORM', /** @type {const} */ (['local', 'external']), 'local');
  const local = platform === 'local';
  const kafkaSecurity = kafkaSecurityConfig({ opt, oneOf, local, root, stateDir });
  const nodes = kafkaNodes({ local, count: (key) => (opt(key) === undefined ? 1 : count(key)), port, host: kafkaHost });
  const brokers = bootstrapList(opt('KAFKA_BOOTSTRAP_SERVERS')) ?? nodes.map((n) => `${kafkaHost}:${n.port}`);
  if (!local) {
    const missing = ['KAFKA_BOOTSTRAP_SERVERS', 'SCHEMA_REGISTRY_URL', 'CONNECT_URL'].filter((key) => !opt(key));
    if (missing.length > 0)
      throw new ConfigError(
        `PLATFORM=external needs ${missing.join(', ')}: set them to your cluster's endpoints (README: "Run it on your cluster")`,
      );
  }
  // Local replication: up to 3 copies, writes acknowledged by all but one.
  const replication = local ? Math.min(3, nodes.length) : -1;
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
    /** `local`: the project runs its own services; `external`: it only checks and uses the endpoints. */
    platform,
    kafka: {
      host: kafkaHost,
      port: port('KAFKA_PORT'),
      controllerPort: port('KAFKA_CONTROLLER_PORT'),
      heap: str('KAFKA_HEAP'),
      /** The local KRaft nodes (broker and controller each), node ids from 1. */
      nodes,
      brokers,
      /** The brokers as one string, as bootstrap.servers takes them. */
      bootstrap: brokers.join(','),
      /** Of the topics we create: -1 leaves it to the cluster's default. */
      replicationFactor: replication,
      minInsyncReplicas: replication >= 3 ? 2 : 1,
      ...kafkaSecurity,
    },
    registry: {
      host: '127.0.0.1',
      port: port('REGISTRY_PORT'),
      managementPort: port('REGISTRY_MANAGEMENT_PORT'),
      heap: str('REGISTRY_HEAP'),
      /** Basic authentication of its API (SCHEMA_REGISTRY_USERNAME, _PASSWORD), if it asks for it. */
      auth: basicAuth(opt, 'SCHEMA_REGISTRY'),
      javaHome: env.REGISTRY_JAVA_HOME || defaults.REGISTRY_JAVA_HOME || '',
      /** The registry's own root: its v2 API (which the Connect converter reads) lives under it. */
      url: registryCcompat.replace(/\/apis\/ccompat\/v\d+$/, ''),
      ccompatUrl: registryCcompat,
      database: plain('REGISTRY_DB'),
      user: plain('REGISTRY_DB_USER'),
      /** Given, or generated on the local platform (lib/credentials.mjs pgPassword). */
      password: opt('REGISTRY_DB_PASSWORD'),
    },
    connect: {
      host: '127.0.0.1',
      port: port('CONNECT_PORT'),
      heap: str('CONNECT_HEAP'),
      groupId: plain('CONNECT_GROUP_ID'),
      url: url('CONNECT_URL') ?? `http://127.0.0.1:${port('CONNECT_PORT')}`,
      /**
       * Local workers of one group, on CONNECT_PORT, +1, ...: two in the
       * production shape (several brokers or SASL_SSL), else one.
       */
      workers: opt('CONNECT_WORKERS')
        ? count('CONNECT_WORKERS')
        : nodes.length > 1 || kafkaSecurity.security.protocol === 'SASL_SSL'
          ? 2
          : 1,
      /**
       * Basic authentication of the REST API: always on the local platform
       * (user admin, password generated into credentials/), and on an
       * external Connect when CONNECT_USERNAME is set.
       */
      auth: local || Boolean(basicAuth(opt, 'CONNECT').username),
      ...basicAuth(opt, 'CONNECT', local ? 'admin' : undefined),
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
      topic: kafkaName('TOPIC', str('TOPIC')),
      rejectedTopic: kafkaName('REJECTED_TOPIC', str('REJECTED_TOPIC')),
      /** Where the sink dead-letters what it cannot convert or write. */
      dlqTopic: kafkaName('DLQ_TOPIC', str('DLQ_TOPIC')),
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
      database: plain('PG_DATABASE'),
      adminUser: plain('PG_ADMIN_USER'),
      /** Given, or generated on the local platform (lib/credentials.mjs pgPassword). */
      adminPassword: opt('PG_ADMIN_PASSWORD'),
      binDir: str('PG_BIN_DIR'),
      /** libpq's sslmode, for every client: ours, the sink's JDBC URL. */
      sslmode: oneOf('PG_SSLMODE', /** @type {const} */ (['disable', 'require', 'verify-ca', 'verify-full']), 'disable'),
      /**
       * Role names are fixed by migrations/. Their passwords: given, or
       * generated on the local platform; on an external database a role
       * whose password is not given is left as it is.
       */
      roles: {
        sink: { user: 'pipeline_sink', password: opt('PG_SINK_PASSWORD') },
        etl: { user: 'pipeline_etl', password: opt('PG_ETL_PASSWORD') },
        reader: { user: 'pipeline_reader', password: opt('PG_READER_PASSWORD') },
      },
    },
  };
  return config;
}

/**
 * `<prefix>_USERNAME` and `<prefix>_PASSWORD` (also read as
 * `<prefix>_URL_USERNAME`, `<prefix>_URL_PASSWORD`).
 * @param {(key: string) => string | undefined} opt @param {string} prefix @param {string} [localUser]
 * @returns {{ username: string | undefined, password: string | undefined }}
 */
function basicAuth(opt, prefix, localUser) {
  const username = opt(`${prefix}_USERNAME`) ?? opt(`${prefix}_URL_USERNAME`);
  const password = opt(`${prefix}_PASSWORD`) ?? opt(`${prefix}_URL_PASSWORD`);
  if (password !== undefined && username === undefined && localUser === undefined)
    throw new ConfigError(`${prefix}_PASSWORD is set but ${prefix}_USERNAME is not: set both, or neither`);
  return { username: username ?? localUser, password };
}

export const SECURITY_PROTOCOLS = /** @type {const} */ (['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL']);
export const SASL_MECHANISMS = /** @type {const} */ (['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']);
/**
 * The local platform's Kafka users: one each for the scripts (a super user),
 * the producer, Connect and the dashboard (read-only).
 */
export const LOCAL_KAFKA_USERS = /** @type {const} */ ({
  admin: 'admin',
  producer: 'producer',
  connect: 'connect',
  dashboard: 'dashboard',
});

/**
 * A value as read, refused when it holds a line break or another control
 * character: every value may end up in a properties, conf or JAAS file,
 * where a newline would add a setting of its own. Pure.
 * @param {string} key @param {string | undefined} value
 */
export function checkedValue(key, value) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (value !== undefined && /[\u0000-\u001f\u007f]/.test(value))
    throw new ConfigError(`${key} holds a line break or control character: set it on one line, without them, in .env or the environment`);
  return value;
}

/**
 * A value rendered into a properties or conf file as is: no quote, no
 * backslash (they would end its string or escape what follows). Pure.
 * @param {string} key @param {string} value
 */
export function plainValue(key, value) {
  if (/['"\\]/.test(value)) throw new ConfigError(`${key}=${value} holds a quote or a backslash: choose a value without them`);
  return value;
}

/** A topic or group name as Kafka allows them. Pure. @param {string} key @param {string} value */
export function kafkaName(key, value) {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(value))
    throw new ConfigError(`${key}=${value} is not a Kafka name: use letters, digits, '.', '_' and '-' only (at most 249)`);
  return value;
}

/**
 * The brokers of KAFKA_BOOTSTRAP_SERVERS, each host:port.
 * @param {string | undefined} raw @returns {string[] | undefined}
 */
export function bootstrapList(raw) {
  if (raw === undefined) return undefined;
  const list = raw
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const bad = list.find((b) => !/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(b));
  if (list.length === 0 || bad !== undefined)
    throw new ConfigError(
      `KAFKA_BOOTSTRAP_SERVERS=${raw} is not a comma-separated list of host:port${bad ? ` (${bad})` : ''}: e.g. broker1:9092,broker2:9092`,
    );
  return list;
}

/**
 * The local KRaft nodes: node i listens on KAFKA_PORT + 2(i-1) and its
 * controller on KAFKA_CONTROLLER_PORT + 2(i-1), so 9092/9093, 9094/9095, ...
 * @param {{ local: boolean, count: (key: string) => number, port: (key: string) => number, host: string }} a
 */
function kafkaNodes({ local, count, port, host }) {
  const n = local ? count('KAFKA_BROKERS') : 1;
  if (n > 5) throw new ConfigError(`KAFKA_BROKERS=${n} is more than this project runs locally (1 to 5): set 1 or 3`);
  const nodes = Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    /** The service's name: kafka, kafka-2, kafka-3. */
    name: i === 0 ? 'kafka' : `kafka-${i + 1}`,
    port: port('KAFKA_PORT') + 2 * i,
    controllerPort: port('KAFKA_CONTROLLER_PORT') + 2 * i,
  }));
  const ports = nodes.flatMap((node) => [node.port, node.controllerPort]);
  if (new Set(ports).size !== ports.length || ports.some((p) => p > 65535))
    throw new ConfigError(
      `KAFKA_PORT and KAFKA_CONTROLLER_PORT collide for ${n} nodes at ${host} (node i takes each + 2(i-1)): set them one apart, e.g. 9092 and 9093`,
    );
  return nodes;
}

/**
 * How clients reach Kafka: protocol, SASL mechanism and identities, CA file.
 * A password left unset on the local platform is the one it generated
 * (lib/credentials.mjs reads it when a client needs it).
 * @param {{ opt: (key: string) => string | undefined, oneOf: <T extends string>(key: string, allowed: readonly T[], fallback: T) => T, local: boolean, root: string, stateDir: string }} a
 */
function kafkaSecurityConfig({ opt, oneOf, local, root, stateDir }) {
  const protocol = oneOf('KAFKA_SECURITY_PROTOCOL', SECURITY_PROTOCOLS, 'PLAINTEXT');
  const mechanism = oneOf('KAFKA_SASL_MECHANISM', SASL_MECHANISMS, 'SCRAM-SHA-512');
  const sasl = protocol.startsWith('SASL_');
  const tls = protocol.endsWith('SSL');
  if (local && (protocol === 'SSL' || protocol === 'SASL_PLAINTEXT'))
    throw new ConfigError(
      `KAFKA_SECURITY_PROTOCOL=${protocol}: the local platform runs PLAINTEXT or SASL_SSL; use ${protocol} with PLATFORM=external`,
    );
  if (local && sasl && mechanism === 'PLAIN')
    throw new ConfigError('KAFKA_SASL_MECHANISM=PLAIN: the local platform creates SCRAM users; set SCRAM-SHA-512 or SCRAM-SHA-256');
  const admin = {
    username: opt('KAFKA_SASL_USERNAME') ?? (local ? LOCAL_KAFKA_USERS.admin : undefined),
    password: opt('KAFKA_SASL_PASSWORD'),
  };
  if (sasl && !local && (admin.username === undefined || admin.password === undefined))
    throw new ConfigError(
      `KAFKA_SECURITY_PROTOCOL=${protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD: set them to your cluster's credentials`,
    );
  /** @param {'PRODUCER' | 'CONNECT' | 'DASHBOARD'} who @param {string} localName */
  const component = (who, localName) => {
    const username = opt(`KAFKA_${who}_SASL_USERNAME`);
    const password = opt(`KAFKA_${who}_SASL_PASSWORD`);
    if (username !== undefined || password !== undefined) return { username: username ?? admin.username, password };
    return local ? { username: localName, password: undefined } : admin;
  };
  const caFile = opt('KAFKA_SSL_CA_FILE');
  return {
    security: {
      protocol,
      mechanism,
      sasl,
      tls,
      /** PEM; unset: the local platform's CA, or the system's trust store on an external cluster. */
      caFile: caFile ? path.resolve(root, caFile) : local && tls ? path.join(stateDir, 'tls', 'ca.pem') : undefined,
    },
    /** Who each component is to Kafka (SASL only). */
    users: {
      admin,
      producer: component('PRODUCER', LOCAL_KAFKA_USERS.producer),
      connect: component('CONNECT', LOCAL_KAFKA_USERS.connect),
      dashboard: component('DASHBOARD', LOCAL_KAFKA_USERS.dashboard),
    },
  };
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
