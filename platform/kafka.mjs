// @ts-check
// Kafka: KAFKA_BROKERS KRaft nodes (one by default), each broker and
// controller in one JVM, loopback only; plaintext, or SASL_SSL with ACLs.
import crypto from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { kafkaIdentity } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';
import { createKafka, kafkaClient } from '#lib/kafka.mjs';
import { delay, readText, startDetached } from '#lib/procs.mjs';
import { applyAcls } from './acls.mjs';
import { requireJava } from './java.mjs';
import { NODE_PRINCIPAL, ensureTls } from './tls.mjs';
import {
  dataDir,
  digest,
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

/** @typedef {Config['kafka']['nodes'][number]} KafkaNode */

/**
 * The SASL_SSL cluster's users, each with both SCRAM mechanisms: the format
 * adds them all; `up` adds to a cluster formatted before one it lacks.
 */
const SCRAM_USERS = /** @type {const} */ (['admin', 'producer', 'connect', 'dashboard']);
const SCRAM_MECHANISMS = ['SCRAM-SHA-512', 'SCRAM-SHA-256'];

/** A node's log folder: data/kafka for the first (as before there were more), data/kafka-N for the others. @param {Config} config @param {KafkaNode} [node] */
export const kafkaLogDir = (config, node = config.kafka.nodes[0]) => dataDir(config, node.name);

/** What shape of cluster the data folder was formatted for. @param {Config} config */
const shapeFile = (config) => path.join(config.dataDir, 'kafka-cluster.json');

/** @param {Config} config */
const shapeOf = (config) => ({ nodes: config.kafka.nodes.length, protocol: config.kafka.security.protocol });

/**
 * One KRaft node, broker and controller in one JVM, loopback only. With
 * SASL_SSL: clients and brokers on SCRAM over TLS, controllers on mutual
 * TLS, ACLs enforced (the admin and the nodes are super users).
 * @param {Config} config @param {KafkaNode} [node]
 */
export function kafkaServerProperties(config, node = config.kafka.nodes[0]) {
  const { host, nodes, security, replicationFactor: rf, minInsyncReplicas: isr } = config.kafka;
  const secure = security.protocol === 'SASL_SSL';
  const client = secure ? 'SASL_SSL' : 'PLAINTEXT';
  return toProperties({
    'process.roles': 'broker,controller',
    'node.id': node.id,
    'controller.quorum.voters': nodes.map((n) => `${n.id}@${host}:${n.controllerPort}`).join(','),
    listeners: `${client}://${host}:${node.port},CONTROLLER://${host}:${node.controllerPort}`,
    'advertised.listeners': `${client}://${host}:${node.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': client,
    'listener.security.protocol.map': secure ? 'CONTROLLER:SSL,SASL_SSL:SASL_SSL' : 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': kafkaLogDir(config, node),
    // Topics created on first use get as many partitions as the pipeline's.
    'num.partitions': config.pipeline.partitions,
    'offsets.topic.replication.factor': rf,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': rf,
    'transaction.state.log.min.isr': isr,
    'share.coordinator.state.topic.replication.factor': rf,
    'share.coordinator.state.topic.min.isr': isr,
    ...(nodes.length > 1 ? { 'default.replication.factor': rf, 'min.insync.replicas': isr } : {}),
    // One member per group locally: rebalancing need not wait for more.
    'group.initial.rebalance.delay.ms': 0,
    ...(secure ? secureProperties(config) : {}),
  });
}

/** @param {Config} config */
function secureProperties(config) {
  const tls = ensureTls(config);
  const admin = kafkaIdentity(config, 'admin', { create: true });
  return {
    'sasl.enabled.mechanisms': 'SCRAM-SHA-512,SCRAM-SHA-256',
    'sasl.mechanism.inter.broker.protocol': 'SCRAM-SHA-512',
    // Brokers speak to each other as the admin; the file is the owner's only.
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': saslJaas('SCRAM-SHA-512', admin),
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config': saslJaas('SCRAM-SHA-256', admin),
    'ssl.keystore.type': 'PEM',
    'ssl.keystore.location': tls.nodePem,
    'ssl.truststore.type': 'PEM',
    'ssl.truststore.location': tls.ca,
    'listener.name.controller.ssl.client.auth': 'required',
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users': `User:${admin.username};${NODE_PRINCIPAL}`,
    'allow.everyone.if.no.acl.found': false,
  };
}

/**
 * A sasl.jaas.config value: PLAIN's login module or SCRAM's.
 * @param {string} mechanism @param {{ username: string, password: string }} who
 */
export const saslJaas = (mechanism, who) =>
  `org.apache.kafka.common.security.${mechanism === 'PLAIN' ? 'plain.PlainLoginModule' : 'scram.ScramLoginModule'} required username=${JSON.stringify(who.username)} password=${JSON.stringify(who.password)};`;

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

/** The local cluster's nodes, one service each. @param {Config} config @returns {Service[]} */
export function kafkaServices(config) {
  return config.kafka.nodes.map((node) => kafkaService(config, node));
}

/** @param {Config} config @param {KafkaNode} node @returns {Service} */
function kafkaService(config, node) {
  const log = logFile(config, node.name);
  const props = path.join(config.runDir, `${node.name}.properties`);
  const first = node.id === 1;
  // The JVM's flags, fingerprinted and started with.
  const jvm = jvmFlags(config, node.name, config.kafka.heap);
  return {
    name: node.name,
    address: `${config.kafka.host}:${node.port}`,
    ports: [
      { key: first ? 'KAFKA_PORT' : `KAFKA_PORT (+${2 * (node.id - 1)} for node ${node.id})`, port: node.port },
      { key: first ? 'KAFKA_CONTROLLER_PORT' : `KAFKA_CONTROLLER_PORT (+${2 * (node.id - 1)})`, port: node.controllerPort },
    ],
    logFile: log,
    hint: 'if the log says the cluster id or the meta.properties do not match, the data folder belongs to another cluster: `npm run platform:down -- --purge`',
    after: [],
    check: () => {
      kafkaCheck(config, node);
    },
    ...pidFileProcess(config, node.name),
    fingerprint: () => digest(kafkaServerProperties(config, node), jvm.join(' ')),
    async start() {
      const java = requireJava(17);
      kafkaInit(config, node, java, props);
      startDetached({
        cmd: java,
        args: [...jvm, `-Dlog4j2.configurationFile=${log4jConfig(config)}`, '-cp', kafkaLibs(config), 'kafka.Kafka', props],
        logFile: log,
        pidFile: pidFile(config, node.name),
      });
    },
    ready: () => kafkaPing(config, node),
    // The last node up adds missing users and sets the ACLs: by then the quorum has a leader.
    ...(node.id === config.kafka.nodes.length && config.kafka.security.protocol === 'SASL_SSL'
      ? {
          afterReady: async () => {
            await ensureScramUsers(config);
            await applyAcls(config);
          },
        }
      : {}),
  };
}

/**
 * A log folder of another node, another cluster shape or another Kafka fails
 * `up` before anything starts.
 * @param {Config} config @param {KafkaNode} node @returns {boolean} whether the folder is formatted
 */
function kafkaCheck(config, node) {
  const logDir = kafkaLogDir(config, node);
  const meta = readText(path.join(logDir, 'meta.properties'));
  const purge = 'run `npm run platform:down -- --purge` to start afresh (or use another STATE_DIR)';
  const shapeText = readText(shapeFile(config));
  const formatted = shapeText
    ? JSON.parse(shapeText)
    : fs.existsSync(path.join(kafkaLogDir(config), 'meta.properties'))
      ? { nodes: 1, protocol: 'PLAINTEXT' }
      : null;
  const wanted = shapeOf(config);
  if (formatted && (formatted.nodes !== wanted.nodes || formatted.protocol !== wanted.protocol))
    throw new UserError(
      `the Kafka data in ${config.dataDir} is of a ${formatted.nodes}-node ${formatted.protocol} cluster, and KAFKA_BROKERS=${wanted.nodes} KAFKA_SECURITY_PROTOCOL=${wanted.protocol} asks for another: ${purge}`,
    );
  if (meta !== undefined) {
    const nodeId = /node\.id=(\d+)/.exec(meta)?.[1];
    if (nodeId !== String(node.id) || !/cluster\.id=\S+/.test(meta)) {
      throw new UserError(`${logDir} was formatted for another Kafka node or version (node.id=${nodeId}): ${purge}`);
    }
    return true;
  }
  if (fs.existsSync(logDir) && fs.readdirSync(logDir).length > 0) {
    throw new UserError(`${logDir} holds data but no meta.properties: it is not a Kafka 4 log folder; ${purge}`);
  }
  return false;
}

/**
 * Writes the node's config (the owner's only: it holds the brokers' password)
 * and formats its storage on first start only, every node with the cluster's
 * one id; with SASL_SSL the format adds the SCRAM users. Their passwords go
 * through an argument file, never the command line.
 * @param {Config} config @param {KafkaNode} node @param {string} java @param {string} props
 */
function kafkaInit(config, node, java, props) {
  writePrivate(props, kafkaServerProperties(config, node));
  if (kafkaCheck(config, node)) return;
  fs.mkdirSync(config.dataDir, { recursive: true });
  let shape = readText(shapeFile(config));
  if (!shape) {
    // Nodes start side by side: the first to get here writes the id, the others read it.
    try {
      fs.writeFileSync(shapeFile(config), JSON.stringify({ ...shapeOf(config), clusterId: kafkaClusterId() }), { flag: 'wx' });
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    }
    shape = /** @type {string} */ (readText(shapeFile(config)));
  }
  const { clusterId } = JSON.parse(shape);
  const users =
    config.kafka.security.protocol === 'SASL_SSL'
      ? SCRAM_USERS.flatMap((who) => {
          const { username, password } = kafkaIdentity(config, who, { create: true });
          return SCRAM_MECHANISMS.flatMap((m) => ['--add-scram', `${m}=[name=${username},password=${password}]`]);
        })
      : [];
  const argFile = path.join(config.runDir, `${node.name}.format.args`);
  // The class path's wildcard stays on the command line: the launcher expands none in an argument file.
  const args = ['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--ignore-formatted', ...users];
  writePrivate(argFile, args.map((a) => JSON.stringify(a)).join('\n'));
  try {
    const res = spawnSync(java, ['-cp', kafkaLibs(config), `-Dlog4j2.configurationFile=${log4jConfig(config)}`, `@${argFile}`], {
      encoding: 'utf8',
    });
    if (res.status !== 0) throw new UserError(`formatting Kafka storage failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
  } finally {
    fs.rmSync(argFile, { force: true });
  }
}

/**
 * Gives every user of SCRAM_USERS the login it has in credentials/, on a
 * cluster formatted before it was added (the dashboard's came later): a
 * user that logs in is left alone, so a second run changes nothing. The
 * admin adds them, so it is not checked here: without it nothing works.
 * @param {Config} config @param {{ timeoutMs?: number }} [opts]
 */
export async function ensureScramUsers(config, { timeoutMs = config.readyTimeoutMs } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (const who of SCRAM_USERS.filter((w) => w !== 'admin')) {
    // Its password is made here when the format that would have made it came before it.
    const { username } = kafkaIdentity(config, who, { create: true });
    if (await logsIn(config, who, config.kafka.nodes[0], deadline)) continue;
    await addScramUser(config, who);
    // The credential reaches each broker through the metadata log: wait until every one takes it.
    for (const node of config.kafka.nodes) {
      while (!(await logsIn(config, who, node, deadline))) {
        if (Date.now() > deadline)
          throw new UserError(
            `Kafka user ${username} was added but ${node.name} still refuses it after ${timeoutMs / 1000} s: see ${logFile(config, node.name)}`,
          );
        await delay(250);
      }
    }
  }
}

/**
 * Whether `who` logs in to `node` with its password: false when the broker
 * refuses the credentials; a broker that does not answer (yet) is asked
 * again until the deadline.
 * @param {Config} config @param {import('#lib/kafka.mjs').KafkaWho} who @param {KafkaNode} node @param {number} deadline
 */
async function logsIn(config, who, node, deadline) {
  const client = { ...kafkaClient(config, who), brokers: [`${config.kafka.host}:${node.port}`] };
  for (;;) {
    const admin = createKafka(client, { clientId: 'platform-users', connectionTimeout: 3000, retry: { retries: 0 } }).admin();
    try {
      await admin.connect();
      return true;
    } catch (err) {
      if (saslRefused(err)) return false;
      if (Date.now() > deadline) {
        const why = /** @type {Error} */ (err).message;
        throw new UserError(`checking Kafka user ${kafkaIdentity(config, who).username} on ${node.name}: ${why}`, { cause: err });
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await delay(500);
  }
}

/** Whether a kafkajs error (or one it wraps) is the broker refusing the credentials. @param {unknown} err */
function saslRefused(err) {
  for (let e = /** @type {any} */ (err), depth = 0; e && depth < 8; e = e.originalError ?? e.cause, depth++)
    if (e.name === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed/i.test(String(e.message))) return true;
  return false;
}

/**
 * Adds (or resets) `who`'s SCRAM credentials with Kafka's ConfigCommand, as
 * the admin: kafkajs has no call for it. One run per mechanism: the
 * controller takes one change per user in a request (ScramControlManager:
 * "A user credential cannot be altered twice in the same request"). Both
 * passwords go through files of the owner's only, never the command line,
 * which ConfigCommand prints when it fails and any local account can read
 * in /proc.
 * @param {Config} config @param {import('#lib/kafka.mjs').KafkaWho} who
 */
async function addScramUser(config, who) {
  const { security } = config.kafka;
  const admin = kafkaIdentity(config, 'admin');
  const user = kafkaIdentity(config, who, { create: true });
  const adminFile = path.join(config.runDir, 'kafka-users.admin.properties');
  const userFile = path.join(config.runDir, `kafka-users.${who}.properties`);
  writePrivate(
    adminFile,
    toProperties({
      'security.protocol': 'SASL_SSL',
      'sasl.mechanism': security.mechanism,
      'sasl.jaas.config': saslJaas(security.mechanism, admin),
      'ssl.truststore.type': 'PEM',
      'ssl.truststore.location': security.caFile ?? ensureTls(config).ca,
    }),
  );
  try {
    for (const mechanism of SCRAM_MECHANISMS) {
      // --add-config-file is a properties file: a backslash there escapes what follows.
      writePrivate(userFile, toProperties({ [mechanism]: `password=${user.password.replace(/\\/g, '\\\\')}` }));
      await configCommand(
        config,
        [
          ...['--bootstrap-server', config.kafka.bootstrap, '--command-config', adminFile, '--alter'],
          ...['--entity-type', 'users', '--entity-name', user.username, '--add-config-file', userFile],
        ],
        `adding Kafka user ${user.username} (${mechanism})`,
      );
    }
  } finally {
    fs.rmSync(adminFile, { force: true });
    fs.rmSync(userFile, { force: true });
  }
}

/**
 * Runs kafka.admin.ConfigCommand (kafka-configs.sh) from Kafka's jars; a
 * failure is one line: the exception's, not the stack.
 * @param {Config} config @param {string[]} args @param {string} what what it does, for the error
 */
async function configCommand(config, args, what) {
  const jvm = ['-Xmx256m', '-cp', kafkaLibs(config), `-Dlog4j2.configurationFile=${log4jConfig(config)}`];
  try {
    await promisify(execFile)(requireJava(17), [...jvm, 'kafka.admin.ConfigCommand', ...args], {
      encoding: 'utf8',
      timeout: 120_000,
    });
  } catch (err) {
    const e = /** @type {{ stderr?: string, stdout?: string }} */ (err);
    const lines = `${e.stderr ?? ''}\n${e.stdout ?? ''}`.split('\n').map((l) => l.trim());
    const why = lines.find((l) => /^Caused by:|Exception:/.test(l)) ?? lines.filter(Boolean).pop() ?? String(err);
    throw new UserError(`${what} failed: ${why}`, { cause: err });
  }
}

/** @param {Config} config @param {KafkaNode} node */
async function kafkaPing(config, node) {
  let client;
  try {
    client = { ...kafkaClient(config), brokers: [`${config.kafka.host}:${node.port}`] };
  } catch {
    return false;
  }
  const admin = createKafka(client, {
    clientId: 'platform-probe',
    connectionTimeout: 1000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.some((b) => b.nodeId === node.id) && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
