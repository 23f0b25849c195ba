// @ts-check
// Kafka Connect never restarts a FAILED task by itself, and the Debezium JDBC
// sink fails its tasks when PostgreSQL goes away mid-batch (the connection
// error is lost behind a failed rollback, so its own retries never start).
// The watchdog restarts failed parts, with a growing pause per connector
// while they keep failing.
import fs from 'node:fs';
import path from 'node:path';
import { connectApi, failedParts, restartFailed } from '#lib/connect.mjs';
import { delay, readText } from '#lib/procs.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const CHECK_MS = 3000;
const MAX_PAUSE_MS = 60_000;

/** What the watchdog did, for `npm run status`: restarts per connector. @param {Config} config */
export const watchdogStateFile = (config) => path.join(config.runDir, 'watchdog.json');

/**
 * @typedef {{ restarts: string[], lastError: string, failingSince: string | null }} ConnectorRecord
 * @param {Config} config @returns {{ updatedAt: string, connectors: Record<string, ConnectorRecord> } | null}
 */
export function readWatchdogState(config) {
  try {
    return JSON.parse(readText(watchdogStateFile(config)) ?? 'null');
  } catch {
    return null;
  }
}

/**
 * Whether a connector keeps failing: still failing, and restarted `times` or
 * more within `windowMs`. Pure.
 * @param {ConnectorRecord | undefined} record @param {number} now
 */
export function keepsRestarting(record, now, times = 3, windowMs = 10 * 60_000) {
  if (!record?.failingSince) return false;
  return record.restarts.filter((at) => now - Date.parse(at) < windowMs).length >= times;
}

/** The pause after the n-th restart in a row: 2 s, 4 s, 8 s ... up to a minute. Pure. @param {number} failures */
export const pauseAfter = (failures) => Math.min(MAX_PAUSE_MS, 2000 * 2 ** (failures - 1));

/**
 * Watches until `stopping()` says so.
 * @param {Config} config @param {{ log: (line: string) => void, stopping: () => boolean }} opts
 */
export async function watch(config, { log, stopping }) {
  /** @type {Map<string, { failures: number, nextAt: number }>} */
  const backoff = new Map();
  /** @type {Record<string, ConnectorRecord>} */
  const records = readWatchdogState(config)?.connectors ?? {};
  const save = () => {
    const file = watchdogStateFile(config);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ updatedAt: new Date().toISOString(), connectors: records }));
    fs.renameSync(`${file}.tmp`, file);
  };
  log(`watching ${config.connect.url} for failed connectors and tasks`);
  while (!stopping()) {
    try {
      const { status, json } = await connectApi(config, 'GET', '/connectors?expand=status');
      if (status === 200 && json) {
        for (const [name, { status: st }] of Object.entries(json)) {
          const failed = failedParts(st);
          const state = backoff.get(name) ?? { failures: 0, nextAt: 0 };
          records[name] ??= { restarts: [], lastError: '', failingSince: null };
          const record = records[name];
          if (failed.length === 0) {
            if (state.failures > 0) log(`${name}: running again`);
            backoff.delete(name);
            if (record.failingSince) {
              record.failingSince = null;
              save();
            }
            continue;
          }
          if (Date.now() < state.nextAt) continue;
          const why =
            String(failed[0].trace ?? '')
              .split('\n')
              .find((l) => /Caused by|Exception/.test(l)) ?? 'no trace';
          const res = await restartFailed(config, name);
          state.failures++;
          state.nextAt = Date.now() + pauseAfter(state.failures);
          backoff.set(name, state);
          const now = new Date().toISOString();
          record.failingSince ??= now;
          record.restarts = [...record.restarts, now].slice(-20);
          record.lastError = why.trim().slice(0, 300);
          save();
          log(
            `${name}: restarted ${failed.length} failed part(s) (attempt ${state.failures}, HTTP ${res.status}); it failed with: ${why.trim().slice(0, 300)}`,
          );
        }
      }
    } catch {
      // Connect down or restarting: nothing to restart until it answers.
      if (!stopping()) await delay(CHECK_MS);
    }
    await delay(CHECK_MS);
  }
  log('stopped');
}
