// @ts-check
// Kafka Connect never restarts a FAILED task by itself, and the Debezium JDBC
// sink fails its tasks when PostgreSQL goes away mid-batch (the connection
// error is lost behind a failed rollback, so its own retries never start).
// The watchdog restarts failed parts, with a growing pause per connector
// while they keep failing; when the sink fails three times in a row on the
// same refusal of PostgreSQL, it moves the refused record to the dead letter
// queue (ops/refused.mjs) instead of waiting for good. Whatever fails in a
// turn (Connect away, a full disk, a bug of ours) is logged with its cause,
// the same line at most once a minute, and the next turn goes on.
import fs from 'node:fs';
import path from 'node:path';
import { connectApi, failedParts, restartFailed } from '#lib/connect.mjs';
import { delay, readText } from '#lib/procs.mjs';
import { holdForRegistry, replayTransient } from './heal.mjs';
import { errorLine, rateLimited } from './log-lines.mjs';
import { quarantineRefused, refusal, restoreBatchSize, rootCause } from './refused.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const CHECK_MS = 3000;
const MAX_PAUSE_MS = 60_000;
// The same refusal this many times in a row makes it a record's, not a passing fault's.
const REFUSALS_BEFORE_QUARANTINE = 3;
// A restarted task runs a few seconds before it fails again: only this long
// without a failure ends a connector's run of failures.
const HEALTHY_AFTER_MS = 60_000;
// More refused records than this in the window: something refuses them all; stop and say so.
const MAX_QUARANTINED = 10;
const QUARANTINE_WINDOW_MS = 10 * 60_000;

/** What the watchdog did, for `npm run status`: restarts per connector. @param {Config} config */
export const watchdogStateFile = (config) => path.join(config.runDir, 'watchdog.json');

/**
 * @typedef {{ at: string, partition: number, offset: number, id: string | null, reason: string }} Quarantined
 * @typedef {{ restarts: string[], lastError: string, failingSince: string | null, quarantined?: Quarantined[],
 *   isolating?: { batchSize: string | null } }} ConnectorRecord
 *   isolating: set while the connector runs with batch.size=1 to find a refused record
 * @param {Config} config
 * @returns {{ updatedAt: string, connectors: Record<string, ConnectorRecord>, heal?: import('./heal.mjs').HealRecord } | null}
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

/**
 * Whether a refusal may be quarantined now: fewer than `max` records moved
 * within `windowMs`. Pure.
 * @param {ConnectorRecord | undefined} record @param {number} now
 */
export function mayQuarantine(record, now, max = MAX_QUARANTINED, windowMs = QUARANTINE_WINDOW_MS) {
  return (record?.quarantined ?? []).filter((q) => now - Date.parse(q.at) < windowMs).length < max;
}

/** The pause after the n-th restart in a row: 2 s, 4 s, 8 s ... up to a minute. Pure. @param {number} failures */
export const pauseAfter = (failures) => Math.min(MAX_PAUSE_MS, 2000 * 2 ** (failures - 1));

/**
 * Watches until `stopping()` says so, a turn every `checkMs`.
 * @param {Config} config
 * @param {{ log: (line: string) => void, stopping: () => boolean, checkMs?: number, repeatMs?: number }} opts
 *   repeatMs: how often the same failure is logged again
 */
export async function watch(config, { log, stopping, checkMs = CHECK_MS, repeatMs = 60_000 }) {
  /** @type {Map<string, { failures: number, nextAt: number, cause: string, sameCause: number, healthySince: number }>} */
  const backoff = new Map();
  const failures = rateLimited(log, { everyMs: repeatMs });
  const saved = readWatchdogState(config);
  /** @type {Record<string, ConnectorRecord>} */
  const records = saved?.connectors ?? {};
  if (!saved && readText(watchdogStateFile(config))) {
    log(`${watchdogStateFile(config)} is not readable JSON: starting with no record of past restarts (the file is written anew)`);
  }
  /** @type {import('./heal.mjs').HealRecord} */
  const heal = saved?.heal ?? {};
  /** The dead letter queue's ends last looked at for transient records. */
  const seenDlq = {};
  const save = () => {
    const file = watchdogStateFile(config);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ updatedAt: new Date().toISOString(), connectors: records, heal }));
    fs.renameSync(`${file}.tmp`, file);
  };
  log(`watching ${config.connect.url} for failed connectors and tasks`);
  // A watchdog that died while a connector ran with batch.size=1 gives it back its own.
  for (const [name, record] of Object.entries(records)) {
    if (!record.isolating) continue;
    try {
      await restoreBatchSize(config, name, record.isolating.batchSize);
      delete record.isolating;
      save();
      log(`${name}: batch.size given back after an interrupted search for a refused record`);
    } catch (err) {
      log(`${name}: could not give batch.size back yet (${errorLine(err)}); trying again on the next refusal`);
    }
  }
  const alive = path.join(config.runDir, 'watchdog.alive');
  fs.mkdirSync(config.runDir, { recursive: true });
  while (!stopping()) {
    try {
      // A heartbeat: the compose healthcheck (and anyone) can tell the loop turns.
      fs.writeFileSync(alive, new Date().toISOString());
    } catch (err) {
      failures.log(`cannot write the heartbeat ${alive}: ${errorLine(err)}`);
    }
    try {
      const { status, json } = await connectApi(config, 'GET', '/connectors?expand=status');
      // While it starts or rebalances Connect answers 404 or 5xx: said, and asked again.
      if (status !== 200 || !json) {
        const why = typeof json?.message === 'string' ? json.message : JSON.stringify(json);
        failures.log(`Kafka Connect answered HTTP ${status} to GET /connectors: ${errorLine(why)}`);
      } else {
        if (config.sink.connector in json) {
          // The registry away: the sink waits, paused, rather than dead-letter every record it reads.
          const line = await holdForRegistry(config, heal);
          if (line) {
            log(line);
            save();
          }
          // What the window before the pause (or a lost connection) dead-lettered goes back by itself.
          const back = heal.hold ? null : await replayTransient(config, seenDlq);
          if (back) {
            log(`${config.sink.connector}: ${back}`);
            heal.healed = [...(heal.healed ?? []), { at: new Date().toISOString(), what: back }].slice(-20);
            save();
          }
        }
        for (const [name, { status: st }] of Object.entries(json)) {
          const failed = failedParts(st);
          const state = backoff.get(name) ?? { failures: 0, nextAt: 0, cause: '', sameCause: 0, healthySince: 0 };
          backoff.set(name, state);
          records[name] ??= { restarts: [], lastError: '', failingSince: null };
          const record = records[name];
          if (failed.length === 0) {
            state.healthySince ||= Date.now();
            if (Date.now() - state.healthySince < HEALTHY_AFTER_MS) continue;
            if (state.failures > 0) log(`${name}: running again`);
            backoff.delete(name);
            if (record.failingSince) {
              record.failingSince = null;
              save();
            }
            continue;
          }
          state.healthySince = 0;
          if (Date.now() < state.nextAt) continue;
          const part = failed.find((p) => refusal(String(p.trace ?? ''))) ?? failed[0];
          const trace = String(part.trace ?? '');
          const why = rootCause(trace);
          state.sameCause = why === state.cause ? state.sameCause + 1 : 1;
          state.cause = why;
          if (
            name === config.sink.connector &&
            refusal(trace) &&
            state.sameCause >= REFUSALS_BEFORE_QUARANTINE &&
            mayQuarantine(record, Date.now())
          ) {
            try {
              const res = await quarantineRefused(config, name, {
                log,
                refusal: refusal(trace) ?? undefined,
                batchSize: record.isolating?.batchSize,
                remember: (batchSize) => {
                  if (batchSize === undefined) delete record.isolating;
                  else record.isolating = { batchSize };
                  save();
                },
              });
              log(`${name}: ${res.line}`);
              if (res.record) {
                record.quarantined = [...(record.quarantined ?? []), { at: new Date().toISOString(), ...res.record }].slice(-50);
                // Its failure is dealt with: the dead letter queue shows it now.
                record.failingSince = null;
                save();
                state.sameCause = 0;
                continue;
              }
            } catch (err) {
              failures.log(`${name}: could not quarantine the refused record: ${errorLine(err)}`);
            }
          }
          const res = await restartFailed(config, name);
          state.failures++;
          state.nextAt = Date.now() + pauseAfter(state.failures);
          const now = new Date().toISOString();
          record.failingSince ??= now;
          record.restarts = [...record.restarts, now].slice(-20);
          record.lastError = why;
          save();
          log(`${name}: restarted ${failed.length} failed part(s) (attempt ${state.failures}, HTTP ${res.status}); it failed with: ${why}`);
        }
      }
    } catch (err) {
      // Connect down or restarting (nothing to restart until it answers), a
      // full disk, or a bug of ours: each is said, and the next turn goes on.
      failures.log(`cannot check the connectors: ${errorLine(err)}`);
      if (!stopping()) await delay(checkMs);
    }
    failures.flush();
    await delay(checkMs);
  }
  failures.flush(true);
  log('stopped');
}
