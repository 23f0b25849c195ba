// @ts-check
// The local platform: PostgreSQL (with pg_cron), Kafka, Apicurio Registry and
// Kafka Connect as plain processes of the project, fetched by platform/pom.xml.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import pg from 'pg';
import {
  classifyPid, cmdline, delay, isAlive, portOwner, portTaken, readText, startDetached, stopPid, tail,
} from './procs.mjs';
import {
  PG_HBA, connectWorkerProperties, javaMajor, kafkaClusterId, kafkaLogDir, kafkaServerProperties,
  pgDataDir, pickJdk, pluginDir, postgresConf,
} from './render.mjs';

/** @typedef {import('./env.mjs').Config} Config */

/** An error the user can act on: printed as one line, no stack trace. */
export class FatalError extends Error {}

export const JDBC_SINK_CLASS = 'io.debezium.connector.jdbc.JdbcSinkConnector';
export const AVRO_CONVERTER_CLASS = 'io.apicurio.registry.utils.converter.AvroConverter';
const PG_MAJOR = '15';
const APT_PACKAGES = [`postgresql-${PG_MAJOR}`, `postgresql-${PG_MAJOR}-cron`];

// ---------------------------------------------------------------- fetch

const FETCHED_DIRS = ['kafka', 'connect-plugins', 'apicurio'];

/** The pom decides what the cache must hold. @param {Config} config */
function pomHash(config) {
  return crypto.createHash('sha256').update(fs.readFileSync(path.join(config.root, 'platform/pom.xml'))).digest('hex');
}

/** @param {Config} config */
const stampFile = (config) => path.join(config.cacheDir, 'platform.stamp.json');

/**
 * Every fetched file with its size: a later `up` compares sizes, so a file
 * truncated or deleted since (an interrupted copy, a full disk) is noticed
 * before a JVM trips over it.
 * @param {Config} config @returns {Record<string, number>}
 */
function manifest(config) {
  /** @type {Record<string, number>} */
  const files = {};
  for (const top of FETCHED_DIRS) {
    const base = path.join(config.cacheDir, top);
    if (!fs.existsSync(base)) continue;
    for (const rel of /** @type {string[]} */ (fs.readdirSync(base, { recursive: true }))) {
      const stat = fs.statSync(path.join(base, rel));
      if (stat.isFile()) files[path.join(top, rel)] = stat.size;
    }
  }
  return files;
}

/**
 * Compares a recorded manifest with what is on disk. Pure.
 * @param {Record<string, number>} recorded @param {(rel: string) => number | undefined} sizeOf
 * @returns {string | null} the first damaged file, or null
 */
export function damagedFile(recorded, sizeOf) {
  for (const [rel, size] of Object.entries(recorded)) {
    const actual = sizeOf(rel);
    if (actual === undefined) return `${rel} is missing`;
    if (actual !== size) return `${rel} has ${actual} bytes, not ${size}`;
  }
  return null;
}

/**
 * Whether the cache holds what the pom asks for, intact.
 * @param {Config} config @returns {{ ok: true } | { ok: false, why: string }}
 */
export function cacheState(config) {
  let stamp;
  try {
    stamp = JSON.parse(readText(stampFile(config)) ?? 'null');
  } catch {
    stamp = null;
  }
  if (!stamp) return { ok: false, why: 'nothing fetched yet' };
  if (stamp.pom !== pomHash(config)) return { ok: false, why: 'platform/pom.xml changed since the last fetch' };
  const damaged = damagedFile(stamp.files, (rel) => {
    try {
      return fs.statSync(path.join(config.cacheDir, rel)).size;
    } catch {
      return undefined;
    }
  });
  return damaged ? { ok: false, why: `the cache is damaged: ${damaged}` } : { ok: true };
}

/**
 * Classifies a failed Maven run from its output, so the user gets one line.
 * @param {string} output
 */
export function mavenFailure(output) {
  if (/Unknown host|Could not transfer artifact|Connection (refused|timed out)|Network is unreachable/i.test(output)) {
    return { kind: 'network', hint: 'Maven Central is out of reach: check the network or proxy settings (~/.m2/settings.xml), then run again' };
  }
  if (/Not in GZIP format|Unexpected end of (ZLIB input stream|input stream)|Truncated|error while extracting|invalid (stored block|distance|block type)|zip END header not found|ZipException|Error while expanding/i.test(output)) {
    return { kind: 'corrupt', hint: 'an archive in the Maven cache is truncated or corrupt' };
  }
  if (/Could not find artifact|Could not resolve dependencies|Failed to read artifact descriptor/i.test(output)) {
    return { kind: 'missing', hint: 'an artifact pinned in platform/pom.xml is not served: check the versions there' };
  }
  return { kind: 'other', hint: 'see the Maven log' };
}

/** @param {Config} config */
function mavenRepo(config) {
  return process.env.MAVEN_REPO_LOCAL || path.join(os.homedir(), '.m2', 'repository');
}

/** The archives we unpack: the only cached files whose corruption Maven does not catch. */
function pinnedArchives(/** @type {Config} */ config) {
  const pom = fs.readFileSync(path.join(config.root, 'platform/pom.xml'), 'utf8');
  const prop = (/** @type {string} */ name) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(pom)?.[1] ?? '';
  return [
    `io/debezium/debezium-connector-jdbc/${prop('debezium.version')}`,
    `io/apicurio/apicurio-registry-app/${prop('apicurio.version')}`,
  ].map((dir) => path.join(mavenRepo(config), dir));
}

/**
 * Resolves the JVM services into the cache. A second run with an unchanged
 * pom does nothing and starts no Maven.
 * @param {Config} config @param {{ refresh?: boolean, log?: (line: string) => void }} [opts]
 */
export async function fetchPlatform(config, { refresh = false, log = console.log } = {}) {
  const state = cacheState(config);
  if (!refresh && state.ok) return { skipped: true, seconds: 0 };
  if (!state.ok && state.why !== 'nothing fetched yet') log(`${state.why}: fetching again`);
  if (ourPids(config).length > 0) {
    throw new FatalError(`the platform cache needs fetching again (${state.ok ? 'asked to refresh' : state.why}), but services of ours are running from it: run \`npm run platform:down\` first`);
  }
  requireCommand('mvn', ['-v'], 'Maven is not installed: run `apt-get install -y maven` (or install Maven 3.8+), then run again');
  requireJava(config, 17);
  const started = Date.now();
  fs.mkdirSync(config.logDir, { recursive: true });
  const logFile = path.join(config.logDir, 'fetch.log');
  // A half-finished earlier fetch may have left truncated copies: redo all
  // copies from Maven's own cache (cheap) rather than trust any of them.
  fs.rmSync(stampFile(config), { force: true });
  fs.rmSync(path.join(config.cacheDir, '.markers'), { recursive: true, force: true });
  for (const dir of FETCHED_DIRS) {
    fs.rmSync(path.join(config.cacheDir, dir), { recursive: true, force: true });
  }
  if (refresh) for (const dir of pinnedArchives(config)) fs.rmSync(dir, { recursive: true, force: true });

  log(`fetching Kafka, Connect, the JDBC sink and Apicurio with Maven (first time: about 300 MB); log: ${path.relative(config.root, logFile)}`);
  let result = await runMaven(config, logFile, log);
  if (!result.ok && mavenFailure(result.output).kind === 'corrupt') {
    log('a cached archive is corrupt: deleting the pinned archives from the Maven cache and fetching them again');
    for (const dir of pinnedArchives(config)) fs.rmSync(dir, { recursive: true, force: true });
    result = await runMaven(config, logFile, log);
  }
  if (!result.ok) {
    const { hint } = mavenFailure(result.output);
    const lastError = result.output.split('\n').filter((l) => l.includes('[ERROR]')).slice(0, 1)[0] ?? '';
    throw new FatalError(`fetch failed: ${hint} (${lastError.replace(/\s*\[ERROR\]\s*/, '').slice(0, 300)}); full log: ${logFile}`);
  }
  fs.writeFileSync(stampFile(config), JSON.stringify({ pom: pomHash(config), files: manifest(config) }));
  return { skipped: false, seconds: (Date.now() - started) / 1000 };
}

/** @param {Config} config @param {string} logFile @param {(line: string) => void} log */
function runMaven(config, logFile, log) {
  return /** @type {Promise<{ ok: boolean, output: string }>} */ (new Promise((resolve) => {
    const args = [
      '-B', '-C', '-f', path.join(config.root, 'platform/pom.xml'), 'package',
      `-Dcache.dir=${config.cacheDir}`, `-Dmaven.repo.local=${mavenRepo(config)}`,
    ];
    const child = spawn('mvn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = fs.createWriteStream(logFile);
    let output = '';
    let downloads = 0;
    const started = Date.now();
    const onData = (/** @type {Buffer} */ chunk) => {
      const text = chunk.toString();
      output += text;
      out.write(text);
      downloads += (text.match(/Downloaded from/g) ?? []).length;
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setInterval(() => {
      log(`  ...${Math.round((Date.now() - started) / 1000)} s, ${downloads} files downloaded`);
    }, 15_000);
    child.on('close', (code) => {
      clearInterval(timer);
      out.end();
      resolve({ ok: code === 0, output });
    });
  }));
}

// ---------------------------------------------------------------- prerequisites

/** @param {string} cmd @param {string[]} args @param {string} message */
function requireCommand(cmd, args, message) {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.error) throw new FatalError(message);
  return `${res.stdout}${res.stderr}`;
}

/** The java for Kafka and Connect: $JAVA_HOME's, else the one on PATH. @param {Config} config @param {number} min */
export function requireJava(config, min) {
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const out = requireCommand(java, ['-version'], `Java is not installed: run \`apt-get install -y openjdk-${min}-jdk-headless\` (Java ${min} or newer), then run again`);
  const major = javaMajor(out);
  if (major === null || major < min) {
    throw new FatalError(`Java ${major ?? '?'} at ${java} is too old: Kafka ${min < 21 ? '4' : ''} needs Java ${min}+; install openjdk-${min}-jdk-headless or point JAVA_HOME at a newer JDK`);
  }
  return java;
}

/** Apicurio Registry 3.3 is built for Java 21. @param {Config} config */
export function registryJava(config) {
  if (config.registry.javaHome) {
    const java = path.join(config.registry.javaHome, 'bin', 'java');
    const major = javaMajor(requireCommand(java, ['-version'], `REGISTRY_JAVA_HOME=${config.registry.javaHome} has no bin/java: fix it in .env`));
    if ((major ?? 0) < 21) throw new FatalError(`REGISTRY_JAVA_HOME points at Java ${major}: Apicurio Registry 3.3 needs Java 21+`);
    return java;
  }
  const base = '/usr/lib/jvm';
  const jdks = (fs.existsSync(base) ? fs.readdirSync(base) : [])
    .map((name) => ({ home: path.join(base, name), release: readText(path.join(base, name, 'release')) ?? '' }))
    .filter((jdk) => jdk.release && fs.existsSync(path.join(jdk.home, 'bin', 'java')));
  const jdk = pickJdk(jdks, 21);
  if (!jdk) {
    const onPath = javaMajor(requireCommand('java', ['-version'], 'Java is not installed'));
    if ((onPath ?? 0) >= 21) return 'java';
    throw new FatalError('Apicurio Registry 3.3 needs Java 21 or newer and none was found in /usr/lib/jvm: install one (e.g. Temurin 21) and set REGISTRY_JAVA_HOME in .env');
  }
  return path.join(jdk.home, 'bin', 'java');
}

/** Installs PostgreSQL 15 and pg_cron from Debian when missing. @param {Config} config @param {(line: string) => void} log */
export function ensurePostgresPackages(config, log) {
  const missing = [];
  if (!fs.existsSync(path.join(config.pg.binDir, 'postgres'))) missing.push(APT_PACKAGES[0]);
  if (!fs.existsSync(path.join(config.pg.binDir, '..', 'lib', 'pg_cron.so'))) missing.push(APT_PACKAGES[1]);
  if (missing.length === 0) return;
  const install = `apt-get install -y ${missing.join(' ')}`;
  const isRoot = process.getuid?.() === 0;
  const sudo = !isRoot && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!isRoot && !sudo) {
    throw new FatalError(`PostgreSQL packages missing (${missing.join(', ')}): run \`sudo apt-get update && sudo ${install}\`, then run again`);
  }
  const prefix = isRoot ? [] : ['sudo', '-n'];
  log(`installing ${missing.join(', ')} with apt-get`);
  for (const args of [['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', ...missing]]) {
    const cmd = [...prefix, ...args];
    const res = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (res.status !== 0) throw new FatalError(`\`${cmd.join(' ')}\` failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
  }
}

// ---------------------------------------------------------------- postgres

/** initdb and postgres refuse to run as root: as root, run them as the `postgres` user. */
function pgUser() {
  if (process.getuid?.() !== 0) return null;
  const res = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (res.status !== 0) throw new FatalError('running as root, but there is no `postgres` user to run PostgreSQL as: install postgresql-15 from Debian, which creates it');
  return { uid: Number(res.stdout), gid: Number(gid.stdout) };
}

/** @param {string} cmd @param {string[]} args */
function asPg(cmd, args) {
  return pgUser() ? { cmd: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] } : { cmd, args };
}

/** @param {string} file */
function chownPg(file) {
  const user = pgUser();
  if (user) fs.chownSync(file, user.uid, user.gid);
}

/** @param {...string} parts */
const digest = (...parts) => crypto.createHash('sha256').update(parts.join('\0')).digest('hex');

/** @param {Config} config @param {string} [database] @param {{ user?: string, password?: string }} [who] */
export function pgClient(config, database = config.pg.database, who = {}) {
  return new pg.Client({
    host: config.pg.host,
    port: config.pg.port,
    user: who.user ?? config.pg.adminUser,
    password: who.password ?? config.pg.adminPassword,
    database,
    connectionTimeoutMillis: 2000,
  });
}

/** @param {Config} config */
async function pgPing(config) {
  const client = pgClient(config, 'postgres');
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Databases, roles and the pg_cron extension the platform itself needs.
 * Idempotent: safe on every `up`.
 * @param {Config} config
 */
async function pgBootstrap(config) {
  const admin = pgClient(config, 'postgres');
  await admin.connect();
  try {
    const { registry } = config;
    const dbExists = async (/** @type {string} */ name) => (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
    if (!(await dbExists(config.pg.database))) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(config.pg.database)}`);
    const role = pg.escapeIdentifier(registry.user);
    const roleExists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [registry.user])).rowCount === 1;
    // ALTER on every run keeps .env the single source of the password.
    await admin.query(`${roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN PASSWORD ${admin.escapeLiteral(registry.password)}`);
    if (!(await dbExists(registry.database))) {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(registry.database)} OWNER ${role}`);
      await admin.query(`REVOKE ALL ON DATABASE ${pg.escapeIdentifier(registry.database)} FROM PUBLIC`);
    }
  } finally {
    await admin.end();
  }
  const db = pgClient(config);
  await db.connect();
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_cron');
  } finally {
    await db.end();
  }
}

/** @param {Config} config */
async function cronReady(config) {
  const db = pgClient(config);
  try {
    await db.connect();
    const res = await db.query("SELECT 1 FROM pg_namespace WHERE nspname = 'cron'");
    return res.rowCount === 1;
  } catch {
    return false;
  } finally {
    await db.end().catch(() => {});
  }
}

/** A data folder we cannot use fails `up` before anything starts. @param {Config} config */
function pgCheck(config) {
  const data = pgDataDir(config);
  const version = readText(path.join(data, 'PG_VERSION'))?.trim();
  if (version !== undefined && version !== PG_MAJOR) {
    throw new FatalError(`${data} holds a PostgreSQL ${version} cluster, this project runs ${PG_MAJOR}: move the folder away or run \`npm run platform:down -- --purge\``);
  }
  if (version === undefined && fs.existsSync(data) && fs.readdirSync(data).length > 0) {
    throw new FatalError(`${data} is not empty but holds no PostgreSQL cluster: remove it or run \`npm run platform:down -- --purge\``);
  }
}

/** @param {Config} config */
function pgInit(config) {
  const data = pgDataDir(config);
  pgCheck(config);
  const version = readText(path.join(data, 'PG_VERSION'))?.trim();
  if (version === undefined) {
    // Only the cluster folder is private: its parents must stay traversable
    // for the postgres user when we run as root.
    fs.mkdirSync(path.dirname(data), { recursive: true });
    fs.mkdirSync(data, { mode: 0o700 });
    chownPg(data);
    const pwfile = path.join(config.runDir, 'pg-initial-password');
    fs.writeFileSync(pwfile, `${config.pg.adminPassword}\n`, { mode: 0o600 });
    chownPg(pwfile);
    try {
      const { cmd, args } = asPg(path.join(config.pg.binDir, 'initdb'), [
        '-D', data, '-U', config.pg.adminUser, `--pwfile=${pwfile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8',
      ]);
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status !== 0) throw new FatalError(`initdb failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
    } finally {
      fs.rmSync(pwfile, { force: true });
    }
    fs.writeFileSync(path.join(data, 'pg_hba.conf'), PG_HBA);
    fs.appendFileSync(path.join(data, 'postgresql.conf'), "\ninclude_if_exists = 'kafka-pg-pipeline.conf'\n");
  }
  const conf = path.join(data, 'kafka-pg-pipeline.conf');
  fs.writeFileSync(conf, postgresConf(config));
  chownPg(conf);
}

// ---------------------------------------------------------------- kafka

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
      throw new FatalError(`${logDir} was formatted for another Kafka node or version (node.id=${nodeId}): run \`npm run platform:down -- --purge\` to start afresh`);
    }
    return true;
  }
  if (fs.existsSync(logDir) && fs.readdirSync(logDir).length > 0) {
    throw new FatalError(`${logDir} holds data but no meta.properties: it is not a Kafka 4 log folder; run \`npm run platform:down -- --purge\``);
  }
  return false;
}

/** Writes the broker's config and formats its storage on first start only. @param {Config} config */
function kafkaInit(config, /** @type {string} */ java) {
  const props = path.join(config.runDir, 'kafka.properties');
  fs.writeFileSync(props, kafkaServerProperties(config));
  if (kafkaCheck(config)) return;
  const res = spawnSync(java, [
    '-cp', `${path.join(config.cacheDir, 'kafka', 'libs')}/*`, `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
    'kafka.tools.StorageTool', 'format', '-t', kafkaClusterId(), '-c', props, '--ignore-formatted',
  ], { encoding: 'utf8' });
  if (res.status !== 0) throw new FatalError(`formatting Kafka storage failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
}

/** @param {Config} config */
const log4jConfig = (config) => path.join(config.root, 'platform', 'log4j2.properties');

/** @param {Config} config */
async function kafkaPing(config) {
  const kafka = new kafkajs.Kafka({
    clientId: 'platform-probe',
    brokers: [config.kafka.bootstrap],
    logLevel: kafkajs.logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
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

// ---------------------------------------------------------------- http

/** @param {string} url */
async function getJson(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    return await res.json();
  } catch {
    return undefined;
  }
}

/** @param {Config} config */
export async function connectPlugins(config) {
  const plugins = await getJson(`${config.connect.url}/connector-plugins?connectorsOnly=false`);
  return Array.isArray(plugins) ? plugins.map((p) => String(p.class)) : [];
}

// ---------------------------------------------------------------- services

/**
 * @typedef {object} Service
 * @property {string} name
 * @property {string} address
 * @property {{ key: string, port: number }[]} ports
 * @property {string} logFile
 * @property {string} hint what to do when it does not come up
 * @property {string[]} after services that must be ready first
 * @property {() => ReturnType<typeof classifyPid>} pid
 * @property {() => void} removePid
 * @property {(() => void) | undefined} [check] refuses data it cannot use, before anything starts
 * @property {(() => string) | undefined} [fingerprint] a digest of the settings it starts with
 * @property {() => Promise<void>} start
 * @property {() => Promise<boolean>} ready
 * @property {(() => Promise<void>) | undefined} [afterReady]
 * @property {() => Promise<string>} stop
 */

/** @param {Config} config @returns {Service[]} in start order */
export function services(config) {
  const log = (/** @type {string} */ name) => path.join(config.logDir, `${name}.log`);
  const pidFile = (/** @type {string} */ name) => path.join(config.runDir, `${name}.pid`);
  const libs = `${path.join(config.cacheDir, 'kafka', 'libs')}/*`;
  const marker = (/** @type {string} */ name) => `-Dkpp.service=${name}@${config.stateDir}`;
  const jvmFlags = (/** @type {string} */ name, /** @type {string} */ heap) => [
    ...heap.split(/\s+/).filter(Boolean),
    marker(name),
    '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true',
  ];
  /** @param {string} name */
  const jvmPid = (name) => () => classifyPid(readText(pidFile(name)), isAlive, cmdline, marker(name));
  /** @param {string} name */
  const jvmStop = (name) => async () => {
    const info = jvmPid(name)();
    fs.rmSync(pidFile(name), { force: true });
    if (info.state !== 'running') return info.state === 'stale' ? `stale pid file removed (${info.why})` : 'not running';
    return stopPid(info.pid);
  };
  const pgData = pgDataDir(config);

  /** @type {Service} */
  const postgres = {
    name: 'postgres',
    address: `${config.pg.host}:${config.pg.port}`,
    ports: [{ key: 'PG_PORT', port: config.pg.port }],
    logFile: log('postgres'),
    hint: 'check the log above; a cluster from another PostgreSQL version or a broken data folder is fixed by `npm run platform:down -- --purge`',
    after: [],
    check: () => pgCheck(config),
    pid: () => classifyPid(readText(path.join(pgData, 'postmaster.pid')), isAlive, cmdline, pgData),
    // PostgreSQL clears a lock file whose pid is gone, but refuses to start
    // when that pid now belongs to another program: drop it for them.
    removePid: () => fs.rmSync(path.join(pgData, 'postmaster.pid'), { force: true }),
    async start() {
      ensurePostgresPackages(config, console.log);
      pgInit(config);
      fs.mkdirSync(config.logDir, { recursive: true });
      fs.appendFileSync(log('postgres'), '');
      chownPg(log('postgres'));
      const { cmd, args } = asPg(path.join(config.pg.binDir, 'pg_ctl'), ['-D', pgData, '-l', log('postgres'), '-W', 'start']);
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status !== 0) throw new FatalError(`pg_ctl start failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
    },
    ready: () => pgPing(config),
    async afterReady() {
      await pgBootstrap(config);
      if (!(await cronReady(config))) throw new FatalError('pg_cron is not available in the database: check that postgresql-15-cron is installed and shared_preload_libraries holds pg_cron');
    },
    async stop() {
      const info = postgres.pid();
      if (info.state !== 'running') return info.state === 'stale' ? `stale pid (${info.why})` : 'not running';
      const { cmd, args } = asPg(path.join(config.pg.binDir, 'pg_ctl'), ['-D', pgData, '-m', 'fast', '-t', '60', '-w', 'stop']);
      const res = spawnSync(cmd, args, { encoding: 'utf8' });
      if (res.status === 0) return 'stopped';
      return stopPid(info.pid, 10_000);
    },
  };

  /** @type {Service} */
  const kafka = {
    name: 'kafka',
    address: config.kafka.bootstrap,
    ports: [{ key: 'KAFKA_PORT', port: config.kafka.port }, { key: 'KAFKA_CONTROLLER_PORT', port: config.kafka.controllerPort }],
    logFile: log('kafka'),
    hint: 'if the log says the cluster id or the meta.properties do not match, the data folder belongs to another cluster: `npm run platform:down -- --purge`',
    after: [],
    check: () => { kafkaCheck(config); },
    pid: jvmPid('kafka'),
    fingerprint: () => digest(kafkaServerProperties(config), config.kafka.heap),
    removePid: () => fs.rmSync(pidFile('kafka'), { force: true }),
    async start() {
      const java = requireJava(config, 17);
      kafkaInit(config, java);
      startDetached({
        cmd: java,
        args: [...jvmFlags('kafka', config.kafka.heap), `-Dlog4j2.configurationFile=${log4jConfig(config)}`, '-cp', libs, 'kafka.Kafka', path.join(config.runDir, 'kafka.properties')],
        logFile: log('kafka'),
        pidFile: pidFile('kafka'),
      });
    },
    ready: () => kafkaPing(config),
    stop: jvmStop('kafka'),
  };

  /** @type {Service} */
  const registry = {
    name: 'registry',
    address: config.registry.ccompatUrl,
    ports: [{ key: 'REGISTRY_PORT', port: config.registry.port }, { key: 'REGISTRY_MANAGEMENT_PORT', port: config.registry.managementPort }],
    logFile: log('registry'),
    hint: 'Apicurio needs Java 21+ (REGISTRY_JAVA_HOME) and reaches PostgreSQL as the registry role; the log names which failed',
    after: ['postgres'],
    pid: jvmPid('registry'),
    fingerprint: () => digest(JSON.stringify(config.registry), config.pg.host, String(config.pg.port)),
    removePid: () => fs.rmSync(pidFile('registry'), { force: true }),
    async start() {
      const java = registryJava(config);
      const { registry: r, pg: p } = config;
      startDetached({
        cmd: java,
        args: [...jvmFlags('registry', r.heap), '-jar', 'quarkus-run.jar'],
        cwd: path.join(config.cacheDir, 'apicurio'),
        // Through the environment, not the command line: `ps` shows arguments to everyone.
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          QUARKUS_HTTP_HOST: '127.0.0.1',
          QUARKUS_HTTP_PORT: String(r.port),
          // Health and metrics listen on a port of their own (built in, not optional).
          QUARKUS_MANAGEMENT_HOST: '127.0.0.1',
          QUARKUS_MANAGEMENT_PORT: String(r.managementPort),
          QUARKUS_LOG_CONSOLE_COLOR: 'false',
          APICURIO_STORAGE_KIND: 'sql',
          APICURIO_STORAGE_SQL_KIND: 'postgresql',
          APICURIO_DATASOURCE_URL: `jdbc:postgresql://${p.host}:${p.port}/${r.database}`,
          APICURIO_DATASOURCE_USERNAME: r.user,
          APICURIO_DATASOURCE_PASSWORD: r.password,
        },
        logFile: log('registry'),
        pidFile: pidFile('registry'),
      });
    },
    ready: async () => Array.isArray(await getJson(`${config.registry.ccompatUrl}/subjects`)),
    stop: jvmStop('registry'),
  };

  /** @type {Service} */
  const connect = {
    name: 'connect',
    address: config.connect.url,
    ports: [{ key: 'CONNECT_PORT', port: config.connect.port }],
    logFile: log('connect'),
    hint: 'Connect needs Kafka and the plugins under .local/connect-plugins; `npm run platform:fetch -- --refresh` fetches them again',
    after: ['kafka'],
    pid: jvmPid('connect'),
    fingerprint: () => digest(connectWorkerProperties(config), JSON.stringify(connectEnv(config)), config.connect.heap),
    removePid: () => fs.rmSync(pidFile('connect'), { force: true }),
    async start() {
      const java = requireJava(config, 17);
      if (!fs.existsSync(pluginDir(config))) throw new FatalError(`${pluginDir(config)} is missing: run \`npm run platform:fetch\``);
      const props = path.join(config.runDir, 'connect.properties');
      fs.mkdirSync(config.runDir, { recursive: true });
      fs.writeFileSync(props, connectWorkerProperties(config));
      startDetached({
        cmd: java,
        args: [...jvmFlags('connect', config.connect.heap), `-Dlog4j2.configurationFile=${log4jConfig(config)}`, '-cp', libs, 'org.apache.kafka.connect.cli.ConnectDistributed', props],
        env: connectEnv(config),
        logFile: log('connect'),
        pidFile: pidFile('connect'),
      });
    },
    ready: async () => {
      const plugins = await connectPlugins(config);
      return plugins.includes(JDBC_SINK_CLASS) && plugins.includes(AVRO_CONVERTER_CLASS);
    },
    stop: jvmStop('connect'),
  };

  /** @type {Service} */
  const watchdog = {
    name: 'watchdog',
    address: `watches ${config.connect.url}`,
    ports: [],
    logFile: log('watchdog'),
    hint: 'the watchdog is a node script (scripts/watchdog.mjs); its log says why it stopped',
    after: ['connect'],
    pid: jvmPid('watchdog'),
    removePid: () => fs.rmSync(pidFile('watchdog'), { force: true }),
    async start() {
      startDetached({
        cmd: process.execPath,
        args: [path.join(config.root, 'scripts', 'watchdog.mjs'), marker('watchdog')],
        env: { ...process.env, STATE_DIR: config.stateDir, CACHE_DIR: config.cacheDir, CONNECT_PORT: String(config.connect.port) },
        logFile: log('watchdog'),
        pidFile: pidFile('watchdog'),
      });
    },
    ready: async () => watchdog.pid().state === 'running',
    stop: jvmStop('watchdog'),
  };

  return [postgres, kafka, registry, connect, watchdog];
}

/**
 * The worker's environment: exactly what connector configs may name as
 * ${env:VAR}, so connect/*.json holds placeholders and never a password.
 * @param {Config} config
 */
export function connectEnv(config) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PG_HOST: config.pg.host,
    PG_PORT: String(config.pg.port),
    PG_DATABASE: config.pg.database,
    PG_SINK_PASSWORD: config.pg.roles.sink.password,
    REGISTRY_PORT: String(config.registry.port),
  };
}

// ---------------------------------------------------------------- up / down / status

/**
 * @typedef {{ name: string, address: string, state: string, seconds: number | null, log: string }} Row
 */

/**
 * Starts whatever is not running, reuses what is, waits for real readiness.
 * Services without a dependency between them start side by side.
 * @param {Config} config @param {{ log?: (line: string) => void }} [opts]
 * @returns {Promise<Row[]>}
 */
export async function up(config, { log = console.log } = {}) {
  const all = services(config);
  // Port conflicts fail before anything is fetched or started.
  for (const svc of all) await preflight(config, svc, log);
  fs.mkdirSync(config.runDir, { recursive: true });
  fs.mkdirSync(config.logDir, { recursive: true });
  const fetchResult = await fetchPlatform(config, { log });
  if (!fetchResult.skipped) log(`fetched in ${fetchResult.seconds.toFixed(0)} s`);
  const started = Date.now();
  /** @type {Map<string, Promise<Row>>} */
  const done = new Map();
  for (const svc of all) {
    done.set(svc.name, (async () => {
      await Promise.all(svc.after.map((name) => done.get(name)));
      return ensureUp(config, svc, started);
    })());
  }
  const results = await Promise.allSettled(all.map((svc) => done.get(svc.name)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw /** @type {PromiseRejectedResult} */ (failed).reason;
  return results.map((r) => /** @type {PromiseFulfilledResult<Row>} */ (r).value);
}

/**
 * A service of ours that is not running must find its ports free; a stale
 * pid file is dropped (never acted on: its pid may be a stranger's now).
 * @param {Config} config @param {Service} svc @param {(line: string) => void} log
 */
async function preflight(config, svc, log) {
  const info = svc.pid();
  if (info.state === 'running') return;
  if (info.state === 'stale') {
    log(`${svc.name}: ${info.why}; ignoring its stale pid file`);
    svc.removePid();
  }
  svc.check?.();
  for (const { key, port } of svc.ports) {
    const host = svc.name === 'postgres' ? config.pg.host : '127.0.0.1';
    if (await portTaken(host, port)) {
      const owner = portOwner(port);
      throw new FatalError(`${svc.name}: port ${port} is already taken by ${owner || 'another program'}: stop it, or set ${key} to a free port in .env`);
    }
  }
}

/** @param {Config} config @param {Service} svc @param {number} t0 @returns {Promise<Row>} */
async function ensureUp(config, svc, t0) {
  const row = (/** @type {string} */ state) => ({
    name: svc.name, address: svc.address, state, seconds: (Date.now() - t0) / 1000, log: path.relative(config.root, svc.logFile),
  });
  const info = svc.pid();
  const fingerprintFile = path.join(config.runDir, `${svc.name}.fingerprint`);
  const fingerprint = svc.fingerprint?.() ?? '';
  let restarted = false;
  if (info.state === 'running') {
    // A running service started with other settings (a port, a heap, a
    // password in .env) is restarted, not silently reused.
    if (fingerprint === (readText(fingerprintFile) ?? fingerprint)) {
      await waitReady(config, svc, info.pid);
      await svc.afterReady?.();
      return row('running (reused)');
    }
    await svc.stop();
    restarted = true;
  }
  await svc.start();
  fs.writeFileSync(fingerprintFile, fingerprint);
  const pid = svc.pid();
  await waitReady(config, svc, pid.state === 'running' ? pid.pid : null);
  await svc.afterReady?.();
  return row(restarted ? 'restarted (settings changed)' : 'started');
}

/** Polls readiness until the timeout, failing early if the process dies. */
async function waitReady(/** @type {Config} */ config, /** @type {Service} */ svc, /** @type {number | null} */ pid) {
  const deadline = Date.now() + config.readyTimeoutMs;
  // postmaster.pid appears a moment after pg_ctl returns.
  let knownPid = pid;
  for (;;) {
    if (await svc.ready()) return;
    if (knownPid === null) {
      const info = svc.pid();
      if (info.state === 'running') knownPid = info.pid;
    }
    const died = knownPid !== null && !isAlive(knownPid);
    if (died || Date.now() > deadline) {
      const why = died ? 'exited during start-up' : `was not ready after ${config.readyTimeoutMs / 1000} s`;
      throw new FatalError(`${svc.name} ${why}. Last lines of ${svc.logFile}:\n${tail(svc.logFile)}\nhint: ${svc.hint}`);
    }
    await delay(250);
  }
}

/**
 * Stops what the project started, dependents first.
 * @param {Config} config @param {{ purge?: boolean }} [opts]
 */
export async function down(config, { purge = false } = {}) {
  const rows = [];
  for (const svc of services(config).reverse()) {
    rows.push({ name: svc.name, result: await svc.stop() });
  }
  if (purge) {
    for (const dir of [config.dataDir, config.runDir, config.logDir]) fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** @param {Config} config @returns {Promise<Row[]>} */
export async function status(config) {
  return Promise.all(services(config).map(async (svc) => {
    const info = svc.pid();
    let state = 'down';
    if (info.state === 'stale') state = `down (stale pid: ${info.why})`;
    if (info.state === 'running') state = (await svc.ready()) ? 'ready' : 'running, not ready';
    return { name: svc.name, address: svc.address, state, seconds: null, log: path.relative(config.root, svc.logFile) };
  }));
}

/** The pids of every process of ours still alive, for tests and `down`. @param {Config} config */
export function ourPids(config) {
  return fs.readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      const argv = cmdline(pid);
      return argv.some((arg) => arg.endsWith(`@${config.stateDir}`) || arg === pgDataDir(config));
    });
}
