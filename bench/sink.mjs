#!/usr/bin/env node
// npm run bench:sink: what a sink setting costs. Loads the full year into an
// empty pipeline with each variant of the connector config in turn (ABAB...,
// so drift on a shared machine falls on both), and prints the sink's rows/s
// the load's end-to-end time and the CPU per row of Connect and PostgreSQL
// for each. Destructive, like npm run bench. The first variant is the base.
//
//   npm run bench:sink                       # use.reduction.buffer on vs off, 2 rounds
//   BENCH_SINK_ROUNDS=3 npm run bench:sink
//   BENCH_SINK_VARIANTS='{"committed":{},"batch 8192":{"batch.size":"8192"}}' npm run bench:sink
import { $ } from 'zx';
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { connectApi } from '#lib/connect.mjs';
import { migrate } from '../ops/migrate.mjs';
import { connectorFiles } from '../ops/connectors.mjs';
import { up } from '../platform/lifecycle.mjs';
import { serviceCpu } from './cpu.mjs';
import { percentile, resetPipeline, waitLoaded } from './lib.mjs';

$.verbose = false;
const ROUNDS = Number(process.env.BENCH_SINK_ROUNDS ?? 2);
const log = (line) => console.error(`[bench:sink] ${line}`);
const sink = connectorFiles(config).find((c) => c.name === config.sink.connector);
/** @type {Record<string, Record<string, string>>} */
const VARIANTS = process.env.BENCH_SINK_VARIANTS
  ? JSON.parse(process.env.BENCH_SINK_VARIANTS)
  : {
      'use.reduction.buffer=false': { 'use.reduction.buffer': 'false' },
      'use.reduction.buffer=true': { 'use.reduction.buffer': 'true' },
    };

await up(config, { log });
await migrate(config);
await $`npm run -s build`;
if (!(await import('node:fs')).existsSync(config.datasetFile)) await $`node dist/dataset/generate-cli.js --out ${config.datasetFile}`;

const results = Object.fromEntries(Object.keys(VARIANTS).map((name) => [name, []]));
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, overrides] of Object.entries(VARIANTS)) {
      log(`round ${round}: ${name}`);
      await resetPipeline(config);
      const put = await connectApi(config, 'PUT', `/connectors/${config.sink.connector}/config`, { ...sink.body, ...overrides });
      if (put.status >= 300) throw new Error(`Connect refused ${name}: ${JSON.stringify(put.json)}`);
      const cpu0 = serviceCpu(config);
      const t0 = Date.now();
      await $`node --max-old-space-size=96 dist/producer/cli.js --restart`;
      const landed = await waitLoaded(config, 527_040);
      const cpu1 = serviceCpu(config);
      const perRow = (/** @type {string} */ kind) => ((cpu1[kind] - cpu0[kind]) * 1e6) / landed.rows;
      results[name].push({
        sink: landed.rows / ((landed.last - landed.first) / 1000),
        endToEnd: (landed.last - t0) / 1000,
        connect: perRow('connect'),
        postgres: perRow('postgres'),
      });
    }
  }
} finally {
  // Back to the committed config.
  await connectApi(config, 'PUT', `/connectors/${config.sink.connector}/config`, sink.body);
}

const median = (/** @type {number[]} */ xs) => percentile(xs, 0.5) ?? 0;
const base = median(Object.values(results)[0].map((r) => r.sink));
console.log(
  table(
    [
      'variant',
      'sink rows/s (each round)',
      'median',
      'vs the first',
      'producer start to last row (s)',
      'Connect µs/row',
      'PostgreSQL µs/row',
    ],
    Object.entries(results).map(([name, runs]) => [
      name,
      runs.map((r) => Math.round(r.sink).toLocaleString('en')).join(', '),
      Math.round(median(runs.map((r) => r.sink))).toLocaleString('en'),
      `${(median(runs.map((r) => r.sink)) / base).toFixed(2)}x`,
      runs.map((r) => r.endToEnd.toFixed(1)).join(', '),
      runs.map((r) => r.connect.toFixed(1)).join(', '),
      runs.map((r) => r.postgres.toFixed(1)).join(', '),
    ]),
  ),
);
