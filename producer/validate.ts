// Row validation: pure, so every rule has a unit test. A row either becomes a
// record or gets a reason, which the producer sends to the rejected topic. A
// record is what the sink can write: id into bigint, timestamp into
// timestamptz, prices into double precision. A reason never quotes a long
// value (it travels in a Kafka header): it says how long it is instead.
import type { SyntheticRecord } from './avro.js';
import { parseIsoTime } from './iso-time.js';

export type Verdict = { ok: true; record: SyntheticRecord } | { ok: false; reason: string };

/** Raw values as the Parquet reader hands them over. */
export interface RawRow {
  id: unknown;
  timestamp: unknown;
  stock_price: unknown;
  sales_trend: unknown;
}

/** Text longer than this is described by its length in a reason, not quoted. */
export const LONGEST_QUOTED = 64;

const count = (n: number) => n.toLocaleString('en');

export function parseId(value: unknown): number | string {
  if (value === null || value === undefined || value === '') return 'id is missing';
  let n: number;
  if (typeof value === 'string') {
    const digits = /^\s*-?\d+\s*$/.test(value);
    if (value.length > LONGEST_QUOTED) {
      return digits
        ? `id is a ${count(value.length)}-digit number, too large`
        : `id is a ${count(value.length)}-character string, not an integer`;
    }
    if (!digits) return `id ${JSON.stringify(value)} is not an integer`;
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

/**
 * The earliest instant PostgreSQL's timestamptz holds: 4714-11-24 00:00 UTC
 * BC in the proleptic Gregorian calendar (Julian day 0; "4713 BC" in its
 * docs). Its latest, 294276 AD, is far beyond what MAX_FUTURE_MS lets through.
 */
export const PG_MIN_TIMESTAMP_MS = -210_866_803_200_000;

/** Epoch ms as ISO-8601 text, or as a count where a Date cannot hold them. */
export function formatTime(ms: number): string {
  const date = new Date(ms);
  if (!Number.isNaN(date.getTime())) return date.toISOString();
  return `${Math.abs(ms)} ms ${ms < 0 ? 'before' : 'after'} 1970`;
}

export function parseTimestamp(value: unknown): number | string {
  if (value === null || value === undefined) return 'timestamp is missing';
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'bigint') ms = Number(value);
  else if (typeof value === 'string') {
    if (value.length > LONGEST_QUOTED) return `timestamp is a ${count(value.length)}-character string, not a valid time`;
    // Never Date.parse: it reads text without an offset in the host's zone.
    const parsed = parseIsoTime(value);
    if (typeof parsed === 'string') return `timestamp ${JSON.stringify(value)} is not a valid time: ${parsed}`;
    ms = parsed;
  } else return `timestamp has type ${typeof value}`;
  if (!Number.isFinite(ms)) return `timestamp ${String(value)} is not a valid time`;
  return Math.trunc(ms);
}

/**
 * Prices and sales are never negative: the demo floors the price at 1. An
 * integer column (bigints) is taken as numbers, as double precision would.
 */
function parseNumber(name: string, value: unknown): number | string {
  if (value === null || value === undefined) return `${name} is missing`;
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number') return `${name} has type ${typeof value}, not a number`;
  if (!Number.isFinite(n)) return `${name} is ${n}`;
  if (n < 0) return `${name} ${n} is negative`;
  return n;
}

/** Rows stamped further ahead than this are a clock or unit error, not data. */
export const MAX_FUTURE_MS = 366 * 24 * 3600 * 1000;

export function validateRow(row: RawRow, now = Date.now()): Verdict {
  const id = parseId(row.id);
  if (typeof id === 'string') return { ok: false, reason: id };
  const timestamp = parseTimestamp(row.timestamp);
  if (typeof timestamp === 'string') return { ok: false, reason: timestamp };
  if (timestamp > now + MAX_FUTURE_MS) {
    return { ok: false, reason: `timestamp ${formatTime(timestamp)} is more than a year in the future` };
  }
  if (timestamp < PG_MIN_TIMESTAMP_MS) {
    return { ok: false, reason: `timestamp ${formatTime(timestamp)} is before 4713 BC, the earliest time PostgreSQL stores` };
  }
  const stock = parseNumber('stock_price', row.stock_price);
  if (typeof stock === 'string') return { ok: false, reason: stock };
  const sales = parseNumber('sales_trend', row.sales_trend);
  if (typeof sales === 'string') return { ok: false, reason: sales };
  return { ok: true, record: { id, timestamp, stock_price: stock, sales_trend: sales } };
}
