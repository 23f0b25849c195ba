// npm run generate [-- --rows N --start ISO --seed N --out path]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { config } from '../scripts/lib/env.mjs';
import { DEFAULT_ROWS, DEFAULT_SEED, DEFAULT_START, generate, writeDataset } from './generate.js';

function main() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: String(DEFAULT_ROWS) },
      start: { type: 'string', default: DEFAULT_START },
      seed: { type: 'string', default: String(DEFAULT_SEED) },
      out: { type: 'string', default: config.datasetFile },
    },
  });
  const rows = Number(values.rows);
  const seed = Number(values.seed);
  if (!Number.isInteger(rows) || rows <= 0) throw new UsageError(`--rows ${values.rows} is not a positive integer`);
  if (!Number.isInteger(seed)) throw new UsageError(`--seed ${values.seed} is not an integer`);
  if (!Number.isFinite(Date.parse(values.start))) throw new UsageError(`--start ${values.start} is not a date: use ISO-8601, e.g. ${DEFAULT_START}`);

  const started = performance.now();
  const data = generate({ rows, start: values.start, seed });
  const out = path.resolve(values.out);
  writeDataset(data, out);
  const seconds = (performance.now() - started) / 1000;
  const mb = fs.statSync(out).size / 1e6;
  console.log(`wrote ${rows.toLocaleString('en')} rows to ${path.relative(process.cwd(), out)} (${mb.toFixed(1)} MB, seed ${seed}) in ${seconds.toFixed(1)} s`);
}

class UsageError extends Error {}

try {
  main();
} catch (err) {
  if (!(err instanceof UsageError) && !(err as NodeJS.ErrnoException).code) throw err;
  console.error(`error: ${(err as Error).message}`);
  process.exitCode = 1;
}
