// @ts-check
// The live dashboard (dashboard/server.mjs, run by scripts/dashboard.mjs) as
// a platform service: `npm start` starts it beside the others and prints its URL.
import path from 'node:path';
import { startDetached } from '#lib/procs.mjs';
import { codeDigest, getJson, logFile, marker, pidFile, pidFileProcess } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

/** @param {Config} config @returns {Service} */
export function dashboardService(config) {
  const proc = pidFileProcess(config, 'dashboard');
  return {
    name: 'dashboard',
    address: config.dashboard.url,
    ports: [{ key: 'DASHBOARD_PORT', port: config.dashboard.port }],
    logFile: logFile(config, 'dashboard'),
    hint: 'the dashboard is a node script (scripts/dashboard.mjs); its log says why it stopped',
    after: ['postgres'],
    ...proc,
    fingerprint: () => codeDigest(config, ['dashboard', 'lib', 'scripts']),
    async start() {
      startDetached({
        cmd: process.execPath,
        args: [path.join(config.root, 'scripts', 'dashboard.mjs'), marker(config, 'dashboard')],
        env: { ...process.env, STATE_DIR: config.stateDir, CACHE_DIR: config.cacheDir, DASHBOARD_PORT: String(config.dashboard.port) },
        logFile: logFile(config, 'dashboard'),
        pidFile: pidFile(config, 'dashboard'),
      });
    },
    ready: async () => (await getJson(`${config.dashboard.url}/api/ping`))?.dashboard === 'kafka-pg-pipeline',
  };
}
