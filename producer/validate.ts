// Row validation: pure, so every rule has a unit test. A row either becomes a
// record or gets a reason, which the producer sends to the rejected topic.
import type { SyntheticRecord } from './avro.js';

export type Verdict = { ok: true; record: SyntheticRecord } | { ok: false; reason: string };

/** Raw values as the Parquet reader hands them over. */
export interface RawRow {
  id: unknown;
  timestamp: unknown;
  stock_price: unknown;
  sales_trend: unknown;
}

export function parseId(value: unknown): number | string {
  if (value === null || value === undefined || value === '') return 'id is missing';
  let n: number;
  if (typeof value === 'string') {
    if (!/^\s*-?\d+\s*$/.test(value)) return `id ${JSON.stringify(value)} is not an integer`;
    n = Number(value);
  } else if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) return `id ${value} is too large`;
    n = Number(value);
  } else if (typeof value === 'number') {
    if (!Number.isInteger(value)) return `id ${value} is not an integer`;
    n = value;
  } else {
    return `id has type ${typeof value}`;
  }
  if (n <= 0) return `id ${n} is not positive`;
  if (!Number.isSafeInteger(n)) return `id ${value} is too large`;
  return n;
}

export function parseTimestamp(value: unknown): number | string {
  if (value === null || value === undefined) return 'timestamp is missing';
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'bigint') ms = Number(value);
  else if (typeof value === 'string') ms = Date.parse(value);
  else return `timestamp has type ${typeof value}`;
  if (!Number.isFinite(ms)) return `timestamp ${String(value)} is not a valid time`;
  return Math.trunc(ms);
}

/** Prices and sales are never negative: the demo floors the price at 1. */
function parseNumber(name: string, value: unknown): number | string {
  if (value === null || value === undefined) return `${name} is missing`;
  if (typeof value !== 'number') return `${name} has type ${typeof value}, not a number`;
  if (!Number.isFinite(value)) return `${name} is ${value}`;
  if (value < 0) return `${name} ${value} is negative`;
  return value;
}

/** Rows stamped further ahead than this are a clock or unit error, not data. */
export const MAX_FUTURE_MS = 366 * 24 * 3600 * 1000;

export function validateRow(row: RawRow, now = Date.now()): Verdict {
  const id = parseId(row.id);
  if (typeof id === 'string') return { ok: false, reason: id };
  const timestamp = parseTimestamp(row.timestamp);
  if (typeof timestamp === 'string') return { ok: false, reason: timestamp };
  if (timestamp > now + MAX_FUTURE_MS) {
    return { ok: false, reason: `timestamp ${new Date(timestamp).toISOString()} is more than a year in the future` };
  }
  const stock = parseNumber('stock_price', row.stock_price);
  if (typeof stock === 'string') return { ok: false, reason: stock };
  const sales = parseNumber('sales_trend', row.sales_trend);
  if (typeof sales === 'string') return { ok: false, reason: sales };
  return { ok: true, record: { id, timestamp, stock_price: stock, sales_trend: sales } };
}
