// @ts-check
// Processes the project starts: pid files, ownership checks, ports, logs.
// Ownership matters because pids get reused: a pid file only counts when the
// live process behind it carries our marker, so `down` never kills a stranger.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** @param {number} pid */
export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/** @param {number} pid */
export function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * What a pid file tells, given the process table. Pure apart from the lookups
 * passed in, so the stale and reused cases can be unit-tested.
 * @param {string | undefined} pidText content of the pid file, undefined if absent
 * @param {(pid: number) => boolean} alive
 * @param {(pid: number) => string[]} argv
 * @param {string} marker a string only our process has on its command line
 * @returns {{ state: 'none' } | { state: 'running', pid: number } | { state: 'stale', pid: number | null, why: string }}
 */
export function classifyPid(pidText, alive, argv, marker) {
  if (pidText === undefined) return { state: 'none' };
  const pid = Number(pidText.trim().split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return { state: 'stale', pid: null, why: 'unreadable pid file' };
  if (!alive(pid)) return { state: 'stale', pid, why: `process ${pid} is gone` };
  if (!argv(pid).some((arg) => arg.includes(marker))) {
    return { state: 'stale', pid, why: `pid ${pid} now belongs to another program` };
  }
  return { state: 'running', pid };
}

/** @param {string} file */
export function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Resolves true when something already listens on host:port. Binding is the
 * only reliable test: a connect may be refused by a listener on 0.0.0.0.
 * @param {string} host @param {number} port
 * @returns {Promise<boolean>}
 */
export function portTaken(host, port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(true));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** Who listens on a port, for error messages: "java (pid 123)" or "". @param {number} port */
export function portOwner(port) {
  const out = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(out.stdout ?? '');
  return match ? `${match[1]} (pid ${match[2]})` : '';
}

/** @param {string} file @param {number} [lines] */
export function tail(file, lines = 15) {
  const text = readText(file);
  if (!text) return '(log is empty)';
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Starts a long-lived process in its own process group (so Ctrl-C on the
 * caller does not reach it), output appended to its log, pid recorded.
 * @param {{ cmd: string, args: string[], env?: NodeJS.ProcessEnv, cwd?: string, logFile: string, pidFile: string }} opts
 */
export function startDetached({ cmd, args, env, cwd, logFile, pidFile }) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.mkdirSync(path.dirname(pidFile), { recursive: true });
  const fd = fs.openSync(logFile, 'a', 0o600);
  // A log from before (0644) is closed too: logs may quote rows.
  fs.fchmodSync(fd, 0o600);
  fs.writeSync(fd, `\n===== ${new Date().toISOString()} starting ${path.basename(cmd)} =====\n`);
  // The child inherits the umask at fork: whatever it creates (Kafka's
  // segments, the dead letters among them) is its owner's only.
  const umask = process.umask(0o077);
  let child;
  try {
    child = spawn(cmd, args, { env, cwd, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    process.umask(umask);
    fs.closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  fs.writeFileSync(pidFile, `${child.pid}\n`);
  child.unref();
  return child.pid;
}

/**
 * SIGTERM, then SIGKILL after graceMs. Resolves once the process is gone.
 * @param {number} pid @param {number} [graceMs]
 */
export async function stopPid(pid, graceMs = 30_000) {
  if (!isAlive(pid)) return 'gone';
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'stopped';
    await delay(100);
  }
  process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await delay(50);
  return 'killed';
}

/** @param {number} ms */
export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first of `count` consecutive ports on 127.0.0.1 that nobody listens on
 * (for a second platform beside the default one: tests, benchmarks).
 * @param {number} count @param {() => number} [random]
 */
export async function freePortRange(count, random = Math.random) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(random() * 20_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) free = !(await portTaken('127.0.0.1', port));
    if (free) return base;
  }
  throw new Error(`no ${count} free ports in a row on 127.0.0.1`);
}
