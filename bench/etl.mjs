#!/usr/bin/env node
// npm run bench:etl: the ETL alone on the loaded table (npm run bench does it too).
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { etlTimes } from './lib.mjs';

const r = await etlTimes(config, Number(process.env.BENCH_RUNS ?? 5));
console.log(`ETL on ${r.rows.toLocaleString('en')} rows, median of ${r.runs} runs`);
console.log(
  table(
    ['run', 'median'],
    [
      ['full rebuild', `${r.fullMs.toFixed(1)} ms`],
      ['incremental, 1 minute of new rows', `${r.minuteMs.toFixed(1)} ms`],
      ['incremental, 1 hour of new rows', `${r.hourMs.toFixed(1)} ms`],
    ],
  ),
);
