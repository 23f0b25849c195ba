#!/usr/bin/env node
// The Connect watchdog, started by `platform:up` beside the worker: Kafka
// Connect never restarts a FAILED task by itself, and the Debezium JDBC sink
// fails its tasks when PostgreSQL goes away mid-batch (the connection error is
// lost behind a failed rollback, so its own retries never start). Every few
// seconds this restarts failed tasks, with a growing pause per connector while
// they keep failing. Logs to .local/logs/watchdog.log.
import { config } from './lib/env.mjs';
import { connectApi } from './lib/connectors.mjs';
import { delay } from './lib/procs.mjs';

const CHECK_MS = 3000;
const MAX_PAUSE_MS = 60_000;
/** @type {Map<string, { failures: number, nextAt: number }>} */
const backoff = new Map();
let stopping = false;
const log = (line) => console.log(`[${new Date().toISOString()}] ${line}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { stopping = true; });

log(`watching ${config.connect.url} for failed connectors and tasks`);
while (!stopping) {
  try {
    const { status, json } = await connectApi(config, 'GET', '/connectors?expand=status');
    if (status === 200 && json) {
      for (const [name, { status: st }] of Object.entries(json)) {
        const failed = [st.connector, ...(st.tasks ?? [])].filter((t) => t.state === 'FAILED');
        const state = backoff.get(name) ?? { failures: 0, nextAt: 0 };
        if (failed.length === 0) {
          if (state.failures > 0) log(`${name}: running again`);
          backoff.delete(name);
          continue;
        }
        if (Date.now() < state.nextAt) continue;
        const why = String(failed[0].trace ?? '').split('\n').find((l) => /Caused by|Exception/.test(l)) ?? 'no trace';
        const res = await connectApi(config, 'POST', `/connectors/${encodeURIComponent(name)}/restart?includeTasks=true&onlyFailed=true`);
        state.failures++;
        state.nextAt = Date.now() + Math.min(MAX_PAUSE_MS, 2000 * 2 ** (state.failures - 1));
        backoff.set(name, state);
        log(`${name}: restarted ${failed.length} failed part(s) (attempt ${state.failures}, HTTP ${res.status}); it failed with: ${why.trim().slice(0, 300)}`);
      }
    }
  } catch (err) {
    // Connect down or restarting: nothing to restart until it answers.
    if (!stopping) await delay(CHECK_MS);
  }
  await delay(CHECK_MS);
}
log('stopped');
