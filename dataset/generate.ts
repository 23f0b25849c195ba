// The synthetic year, as the original demo defined it, from a seeded PRNG so
// that a seed always gives the same rows (and the same file, byte for byte).
import fs from 'node:fs';
import path from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { mersenne } from 'pure-rand/generator/mersenne';

export const DEFAULT_ROWS = 527_040;
export const DEFAULT_START = '2024-01-01T00:00:00Z';
export const DEFAULT_SEED = 42;
const MINUTE = 60_000;
const DAY = 86_400_000;

// The demo's constants.
const BASE_PRICE = 100;
const TREND = 0.0002;
const VOLATILITY = 2;
const MIN_PRICE = 1.0;
const BASE_SALES = 200;
const SEASONAL_AMPLITUDE = 50;
const SALES_NOISE = 5;

export interface Dataset {
  id: string[];
  timestamp: Float64Array;
  stock_price: Float64Array;
  sales_trend: Float64Array;
}

/** Standard normal deviates by Box-Muller, both halves used. */
export function normalSource(seed: number) {
  // Mersenne Twister's seeding spreads even a small seed over its whole
  // state; xoroshiro's first outputs for seed 42 were 3.8-sigma outliers.
  const rng = mersenne(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u1 = 1 - uniformFloat64(rng); // (0, 1]: log stays finite
    const u2 = uniformFloat64(rng);
    const radius = Math.sqrt(-2 * Math.log(u1));
    spare = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  };
}

export const round2 = (x: number) => Math.round(x * 100) / 100;

/** Day of the year of a UTC instant, counting from 1. */
export function dayOfYear(ms: number): number {
  const year = new Date(ms).getUTCFullYear();
  return Math.floor((ms - Date.UTC(year, 0, 1)) / DAY) + 1;
}

export function seasonal(ms: number): number {
  return BASE_SALES + SEASONAL_AMPLITUDE * Math.sin(2 * Math.PI * (dayOfYear(ms) / 365));
}

export function generate({ rows = DEFAULT_ROWS, start = DEFAULT_START, seed = DEFAULT_SEED } = {}): Dataset {
  const t0 = Date.parse(start);
  if (!Number.isFinite(t0)) throw new Error(`--start ${start} is not a date: use ISO-8601, e.g. ${DEFAULT_START}`);
  const normal = normalSource(seed);
  const id = new Array<string>(rows);
  const timestamp = new Float64Array(rows);
  const stock = new Float64Array(rows);
  const sales = new Float64Array(rows);
  // As in the demo: the whole price walk first, then the sales noise. The
  // walk itself is kept unrounded; only stored values are rounded.
  let price = BASE_PRICE;
  for (let i = 0; i < rows; i++) {
    id[i] = String(i + 1);
    timestamp[i] = t0 + i * MINUTE;
    price = Math.max(price + VOLATILITY * normal() + TREND, MIN_PRICE);
    stock[i] = round2(price);
  }
  for (let i = 0; i < rows; i++) sales[i] = round2(seasonal(timestamp[i]) + SALES_NOISE * normal());
  return { id, timestamp, stock_price: stock, sales_trend: sales };
}

export const PARQUET_SCHEMA: SchemaElement[] = [
  { name: 'schema', num_children: 4 },
  { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' }, repetition_type: 'REQUIRED' },
  {
    name: 'timestamp',
    type: 'INT64',
    converted_type: 'TIMESTAMP_MILLIS',
    logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
    repetition_type: 'REQUIRED',
  },
  { name: 'stock_price', type: 'DOUBLE', repetition_type: 'REQUIRED' },
  { name: 'sales_trend', type: 'DOUBLE', repetition_type: 'REQUIRED' },
];

/**
 * Writes atomically: a reader never sees a half-written dataset. Row group
 * and page sizes are settable so tests can shape files as other writers do.
 */
export function writeDataset(data: Dataset, file: string, rowGroupSize = 65_536, pageSize?: number) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    parquetWriteFile({
      filename: tmp,
      schema: PARQUET_SCHEMA,
      columnData: [
        { name: 'id', data: data.id },
        { name: 'timestamp', data: Array.from(data.timestamp, (ms) => BigInt(ms)) },
        { name: 'stock_price', data: data.stock_price },
        { name: 'sales_trend', data: data.sales_trend },
      ],
      rowGroupSize,
      ...(pageSize === undefined ? {} : { pageSize }),
      codec: 'SNAPPY',
      createdBy: 'kafka-pg-pipeline generate',
    });
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
