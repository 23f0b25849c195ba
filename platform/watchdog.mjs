// @ts-check
// The watchdog (ops/watchdog.mjs, run by scripts/watchdog.mjs): restarts the
// connectors' failed tasks, which Connect never does by itself.
import path from 'node:path';
import { startDetached } from '#lib/procs.mjs';
import { codeDigest, logFile, marker, pidFile, pidFileProcess } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

/** @param {Config} config @returns {Service} */
export function watchdogService(config) {
  const proc = pidFileProcess(config, 'watchdog');
  return {
    name: 'watchdog',
    address: `watches ${config.connect.url}`,
    ports: [],
    logFile: logFile(config, 'watchdog'),
    hint: 'the watchdog is a node script (scripts/watchdog.mjs); its log says why it stopped',
    after: ['connect'],
    ...proc,
    fingerprint: () => codeDigest(config, ['ops', 'lib', 'scripts']),
    async start() {
      startDetached({
        cmd: process.execPath,
        args: [path.join(config.root, 'scripts', 'watchdog.mjs'), marker(config, 'watchdog')],
        env: { ...process.env, STATE_DIR: config.stateDir, CACHE_DIR: config.cacheDir, CONNECT_PORT: String(config.connect.port) },
        logFile: logFile(config, 'watchdog'),
        pidFile: pidFile(config, 'watchdog'),
      });
    },
    ready: async () => proc.pid().state === 'running',
  };
}
