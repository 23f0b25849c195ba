#!/usr/bin/env node
// The Connect watchdog (ops/watchdog.mjs), started by `platform:up` beside the
// worker. Logs to .local/logs/watchdog.log.
import { config } from '#lib/config.mjs';
import { watch } from '../ops/watchdog.mjs';

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    stopping = true;
  });
await watch(config, {
  log: (line) => console.log(`[${new Date().toISOString()}] ${line}`),
  stopping: () => stopping,
});
