// npm run generate [-- --rows N --start ISO --seed N --out path]
import fs from 'node:fs';
import path from 'node:path';
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { UsageError, UserError, main } from '#lib/errors.mjs';
import { DEFAULT_ROWS, DEFAULT_SEED, DEFAULT_START, generate, writeDataset } from './generate.js';
import type { Dataset } from './generate.js';

/** What to do when the file system refuses to write `out`, by error code. */
const WRITE_FIXES: Record<string, string> = {
  ENOSPC: 'free some disk space or pass --out <path> on another disk',
  EISDIR: '--out names a directory: give it a file path',
  ENOTDIR: 'a parent of --out is a file, not a directory: pass another --out <path>',
  EEXIST: 'a parent of --out is a file, not a directory: pass another --out <path>',
};

/** Writes the dataset; a file system error becomes one line naming the path and the fix. */
function write(data: Dataset, out: string): number {
  try {
    writeDataset(data, out);
    return fs.statSync(out).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code) throw err;
    const fix = WRITE_FIXES[code] ?? 'pass --out <path> in a directory you can write to';
    throw new UserError(`cannot write ${out} (${(err as Error).message}): ${fix}`, { cause: err });
  }
}

await main(async () => {
  const { values } = parseFlags({
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
  if (!Number.isFinite(Date.parse(values.start)))
    throw new UsageError(`--start ${values.start} is not a date: use ISO-8601, e.g. ${DEFAULT_START}`);

  const started = performance.now();
  const data = generate({ rows, start: values.start, seed });
  const out = path.resolve(values.out);
  const bytes = write(data, out);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `wrote ${rows.toLocaleString('en')} rows to ${path.relative(process.cwd(), out)} (${(bytes / 1e6).toFixed(1)} MB, seed ${seed}) in ${seconds.toFixed(1)} s`,
  );
});
