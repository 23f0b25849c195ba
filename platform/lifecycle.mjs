// @ts-check
// The local platform's lifecycle: `up` starts what is not running (services
// without a dependency between them side by side) and waits for real
// readiness; `down` stops dependents first; `status` asks each service.
// A service is a file beside this one; adding one is adding it to SERVICES.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';
import { acquireLock } from '#lib/lock.mjs';
import { delay, isAlive, portOwner, portTaken, readText, tail } from '#lib/procs.mjs';
import { COMPOSE_PROJECT, composeContainers, stackRunning } from './compose.mjs';
import { connectServices } from './connect.mjs';
import { closeStateDirs } from './service.mjs';
import { dashboardService } from './dashboard.mjs';
import { checkEndpoints } from './external.mjs';
import { fetchPlatform } from './fetch.mjs';
import { kafkaServices } from './kafka.mjs';
import { pgServiceGid, postgresService } from './postgres.mjs';
import { registryService } from './registry.mjs';
import { watchdogService } from './watchdog.mjs';

export { ourPids } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

/** In start order; Kafka's nodes and Connect's workers are several services. */
const SERVICES = [postgresService, kafkaServices, registryService, connectServices, watchdogService, dashboardService];

/** @param {Config} config @returns {Service[]} in start order */
export const services = (config) => SERVICES.flatMap((make) => make(config));

/**
 * @typedef {{ name: string, address: string, state: string, seconds: number | null, log: string, container?: boolean }} Row
 *   container: served by the compose stack's container, not by a process of ours
 */

/**
 * Starts whatever is not running, reuses what is, waits for real readiness.
 * Services without a dependency between them start side by side.
 * @param {Config} config @param {{ log?: (line: string) => void }} [opts]
 * @returns {Promise<Row[]>}
 */
export async function up(config, { log = console.log } = {}) {
  if (config.platform === 'external') {
    const rows = await checkEndpoints(config);
    const down = rows.filter((r) => r.state !== 'ready');
    if (down.length > 0)
      throw new UserError(
        `PLATFORM=external: ${down.map((r) => `${r.name} at ${r.address} is ${r.state}`).join('; ')} (nothing is started with PLATFORM=external)`,
      );
    return rows;
  }
  const lock = await platformLock(config, log);
  try {
    return await upLocked(config, log);
  } finally {
    lock.release();
  }
}

/**
 * One `platform:up` or `down` at a time per state folder: two at once would
 * each start a service, and the orphan would hold its ports with no pid file.
 * The second waits for the first, then finds the services running.
 * @param {Config} config @param {(line: string) => void} log
 */
async function platformLock(config, log) {
  const file = path.join(config.runDir, 'platform.lock');
  return acquireLock(file, {
    onBusy: 'wait',
    timeoutMs: 3 * config.readyTimeoutMs,
    what: 'platform command',
    doing: 'is starting or stopping the services',
    fix: 'wait for it, or stop it (`npm run platform:down`)',
    onWait: (holder) => log(`another platform command (pid ${holder.pid}) is starting or stopping the services: waiting for it`),
  });
}

/** @param {Config} config @param {(line: string) => void} log @returns {Promise<Row[]>} */
async function upLocked(config, log) {
  const all = services(config);
  // The compose stack serves the same ports: say so rather than fight it.
  const stack = await composeContainers();
  if (stackRunning(stack) && !all.some((svc) => svc.pid().state === 'running')) {
    const running = (stack ?? []).filter((c) => c.state !== 'down' && c.state !== 'done').map((c) => c.service);
    throw new UserError(
      `the compose stack ${COMPOSE_PROJECT} is running (${running.join(', ')}) on these ports: use it as it is (\`npm run status\` reads it), or \`docker compose down\` first`,
    );
  }
  // Port conflicts fail before anything is fetched or started.
  for (const svc of all) await preflight(svc, log);
  closeStateDirs(config, { gid: pgServiceGid() });
  const fetchResult = await fetchPlatform(config, { log });
  if (!fetchResult.skipped) log(`fetched in ${fetchResult.seconds.toFixed(0)} s`);
  const started = Date.now();
  /** @type {Map<string, Promise<Row>>} */
  const done = new Map();
  for (const svc of all) {
    done.set(
      svc.name,
      (async () => {
        await Promise.all(svc.after.map((name) => done.get(name)));
        return ensureUp(config, svc, started);
      })(),
    );
  }
  const results = await Promise.allSettled(all.map((svc) => done.get(svc.name)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw /** @type {PromiseRejectedResult} */ (failed).reason;
  // Again once every service made its folders (a caller's umask may be open).
  closeStateDirs(config, { gid: pgServiceGid() });
  return results.map((r) => /** @type {PromiseFulfilledResult<Row>} */ (r).value);
}

/**
 * A service of ours that is not running must find its ports free; a stale
 * pid file is dropped (never acted on: its pid may be a stranger's now).
 * @param {Service} svc @param {(line: string) => void} log
 */
async function preflight(svc, log) {
  const info = svc.pid();
  if (info.state === 'running') return;
  if (info.state === 'stale') {
    log(`${svc.name}: ${info.why}; ignoring its stale pid file`);
    svc.removePid();
  }
  svc.check?.();
  for (const { key, port } of svc.ports) {
    if (await portTaken(svc.host ?? '127.0.0.1', port)) {
      const owner = portOwner(port);
      throw new UserError(
        `${svc.name}: port ${port} is already taken by ${owner || 'another program'}: stop it, or set ${key} to a free port in .env`,
      );
    }
  }
}

/** @param {Config} config @param {Service} svc @param {number} t0 @returns {Promise<Row>} */
async function ensureUp(config, svc, t0) {
  const row = (/** @type {string} */ state) => ({
    name: svc.name,
    address: svc.address,
    state,
    seconds: (Date.now() - t0) / 1000,
    log: path.relative(config.root, svc.logFile),
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
      throw new UserError(`${svc.name} ${why}. Last lines of ${svc.logFile}:\n${tail(svc.logFile)}\nhint: ${svc.hint}`);
    }
    await delay(250);
  }
}

/**
 * Stops what the project started, dependents first.
 * @param {Config} config @param {{ purge?: boolean }} [opts]
 */
export async function down(config, { purge = false } = {}) {
  if (config.platform === 'external') return [{ name: 'external', result: 'PLATFORM=external: nothing of the services is ours to stop' }];
  const rows = [];
  const lock = await platformLock(config, () => {});
  try {
    for (const svc of services(config).reverse()) {
      rows.push({ name: svc.name, result: await svc.stop() });
    }
  } finally {
    lock.release();
  }
  if (purge) {
    for (const dir of [config.dataDir, config.runDir, config.logDir]) fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** @param {Config} config @returns {Promise<Row[]>} */
export async function status(config) {
  if (config.platform === 'external') return checkEndpoints(config);
  const all = services(config);
  const stack = await composeContainers();
  if (stackRunning(stack) && !all.some((svc) => svc.pid().state === 'running')) {
    // The services are the compose stack's containers, on the same addresses.
    return all.map((svc) => {
      const c = (stack ?? []).find((x) => x.service === svc.name);
      return {
        name: svc.name,
        address: svc.address,
        state: c ? (c.state === 'ready' ? 'ready' : `${c.state} (container)`) : 'down (no container)',
        seconds: null,
        log: `docker compose logs ${svc.name}`,
        container: true,
      };
    });
  }
  return Promise.all(
    all.map(async (svc) => {
      const info = svc.pid();
      let state = 'down';
      if (info.state === 'stale') state = `down (stale pid: ${info.why})`;
      if (info.state === 'running') state = (await svc.ready()) ? 'ready' : 'running, not ready';
      return { name: svc.name, address: svc.address, state, seconds: null, log: path.relative(config.root, svc.logFile) };
    }),
  );
}
