// @ts-check
// What every service of the local platform has in common: its files under
// STATE_DIR, the marker on its command line that proves a pid is ours, and
// the pid-file process handling the JVM services and the watchdog share.
// Each service is a file beside this one that returns a Service.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { classifyPid, cmdline, isAlive, readText, stopPid } from '#lib/procs.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/**
 * @typedef {object} Service
 * @property {string} name
 * @property {string} address
 * @property {{ key: string, port: number }[]} ports the .env key of each port, for error messages
 * @property {string} [host] the address its ports bind to (127.0.0.1 unless it says)
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

/** @param {Config} config @param {string} name */
export const logFile = (config, name) => path.join(config.logDir, `${name}.log`);
/** @param {Config} config @param {string} name */
export const pidFile = (config, name) => path.join(config.runDir, `${name}.pid`);
/** Where a service keeps its data. @param {Config} config @param {string} name */
export const dataDir = (config, name) => path.join(config.dataDir, name);
/** On the command line of every process we start: pids are ours only if it is there. @param {Config} config @param {string} name */
export const marker = (config, name) => `-Dkpp.service=${name}@${config.stateDir}`;
/** Kafka's jars, which Kafka and Connect both run from. @param {Config} config */
export const kafkaLibs = (config) => `${path.join(config.cacheDir, 'kafka', 'libs')}/*`;
/** @param {Config} config */
export const log4jConfig = (config) => path.join(config.root, 'platform', 'log4j2.properties');

/**
 * Closes STATE_DIR to other accounts: its folders 0700 and nothing in the
 * logs or the services' data readable by others, also when made before
 * (Kafka's segments hold rows and dead letters; logs may quote them). A
 * service account that must pass through (PostgreSQL's, when we run as
 * root) gets search rights through its group, not the world's.
 * @param {Config} config @param {{ gid?: number }} [passThrough] the group that may traverse
 */
export function closeStateDirs(config, passThrough = {}) {
  const { stateDir, runDir, logDir, dataDir: data } = config;
  const traversed = passThrough.gid === undefined ? 0o700 : 0o710;
  for (const dir of [stateDir, runDir, logDir, data]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (passThrough.gid !== undefined) fs.chownSync(dir, fs.statSync(dir).uid, passThrough.gid);
    fs.chmodSync(dir, traversed);
  }
  for (const dir of [logDir, data]) stripOthers(dir);
}

/** Removes the group's and others' rights below `dir` (PostgreSQL's cluster keeps its own). @param {string} dir */
function stripOthers(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isSymbolicLink() || (entry.isDirectory() && fs.existsSync(path.join(file, 'PG_VERSION')))) continue;
    try {
      const { mode, uid } = fs.statSync(file);
      // Files of another account (PostgreSQL's log when we run as root) keep their owner's choice.
      if ((mode & 0o077) !== 0 && uid === process.getuid?.()) fs.chmodSync(file, mode & 0o700);
      if (entry.isDirectory()) stripOthers(file);
    } catch (err) {
      // A running service renames its files as it goes (Kafka's checkpoint .tmp files): gone is fine.
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * A digest of the code a node service of ours runs (the .mjs files of the
 * folders named, tests aside): a `git pull` that changes it restarts the
 * service on the next `up`, instead of leaving yesterday's code running.
 * @param {Config} config @param {string[]} dirs relative to the repository
 */
export function codeDigest(config, dirs) {
  const files = dirs.flatMap((dir) =>
    fs
      .readdirSync(path.join(config.root, dir))
      .filter((f) => f.endsWith('.mjs') && !f.includes('.test.'))
      .sort()
      .map((f) => path.join(config.root, dir, f)),
  );
  return digest(...files.map((f) => `${f}\0${fs.readFileSync(f, 'utf8')}`));
}

/** @param {...string} parts */
export const digest = (...parts) => crypto.createHash('sha256').update(parts.join('\0')).digest('hex');

/**
 * Writes a file only its owner may read (it holds a password): the mode is
 * set on a file that existed before too, which writeFileSync leaves alone.
 * @param {string} file @param {string} text
 */
export function writePrivate(file, text) {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

/** @param {Record<string, string | number | boolean>} props */
export function toProperties(props) {
  return Object.entries(props)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')
    .concat('\n');
}

/**
 * Garbage collectors: G1 with short pauses for the broker and the registry;
 * the throughput collector for Connect, whose work is a stream of short-lived
 * records: G1 cost it 23-28 µs of CPU per row against 13-16 (npm run
 * bench:sink, warm, one sitting), for young pauses of a few milliseconds.
 */
export const COLLECTORS = {
  lowPause: ['-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20'],
  throughput: ['-XX:+UseParallelGC'],
};

/**
 * JVM flags of our services: the heap from .env (which may carry other JVM
 * flags, a collector of its own choosing included), our marker, the
 * service's collector unless the heap setting chose one, exit on OOM.
 * @param {Config} config @param {string} name @param {string} heap @param {string[]} [collector]
 */
export const jvmFlags = (config, name, heap, collector = COLLECTORS.lowPause) => {
  const flags = heap.split(/\s+/).filter(Boolean);
  const collectorChosen = flags.some((f) => /^-XX:\+Use\w+GC$/.test(f));
  return [...flags, marker(config, name), ...(collectorChosen ? [] : collector), '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true'];
};

/**
 * pid, removePid and stop of a process started with startDetached: its pid
 * file counts only while the live process carries our marker.
 * @param {Config} config @param {string} name
 * @returns {Pick<Service, 'pid' | 'removePid' | 'stop'>}
 */
export function pidFileProcess(config, name) {
  const pid = () => classifyPid(readText(pidFile(config, name)), isAlive, cmdline, marker(config, name));
  return {
    pid,
    removePid: () => fs.rmSync(pidFile(config, name), { force: true }),
    async stop() {
      const info = pid();
      fs.rmSync(pidFile(config, name), { force: true });
      if (info.state !== 'running') return info.state === 'stale' ? `stale pid file removed (${info.why})` : 'not running';
      return stopPid(info.pid);
    },
  };
}

/** The pids of every process of ours still alive, for tests and `down`. @param {Config} config */
export function ourPids(config) {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      const argv = cmdline(pid);
      return argv.some((arg) => arg.endsWith(`@${config.stateDir}`) || arg === dataDir(config, 'postgres'));
    });
}

/** @param {string} url @param {Record<string, string>} [headers] */
export async function getJson(url, headers = {}) {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    return await res.json();
  } catch {
    return undefined;
  }
}
