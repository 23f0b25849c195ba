import { describe, expect, it } from 'vitest';
import { PG_MIN_TIMESTAMP_MS, parseId, parseTimestamp, validateRow } from './validate.js';

const good = { id: '42', timestamp: Date.UTC(2024, 0, 1), stock_price: 101.5, sales_trend: 199.25 };

describe('validateRow', () => {
  it('accepts a good row and types it', () => {
    expect(validateRow(good)).toEqual({ ok: true, record: { ...good, id: 42 } });
  });

  it.each([
    [{ id: null }, 'id is missing'],
    [{ id: '' }, 'id is missing'],
    [{ id: '-3' }, 'id -3 is not positive'],
    [{ id: '0' }, 'id 0 is not positive'],
    [{ id: 'abc' }, 'id "abc" is not an integer'],
    [{ id: 1.5 }, 'id 1.5 is not an integer'],
    [{ id: '99999999999999999999' }, 'too large'],
    [{ id: 2n ** 60n }, 'id 1152921504606846976 is too large'],
    [{ id: 2 ** 60 }, 'id 1152921504606847000 is too large'],
    [{ id: true }, 'id has type boolean'],
    [{ timestamp: null }, 'timestamp is missing'],
    [{ timestamp: 'yesterday' }, 'timestamp "yesterday" is not a valid time: it is not ISO-8601'],
    // Date.parse took these for 2001-01-01 and 2001-12-01, and the next for 2023-03-01.
    [{ timestamp: '1' }, 'timestamp "1" is not a valid time: it is not ISO-8601'],
    [{ timestamp: '12' }, 'timestamp "12" is not a valid time: it is not ISO-8601'],
    [{ timestamp: '2023-02-29T00:00:00' }, 'timestamp "2023-02-29T00:00:00" is not a valid time: 2023-02 has no day 29'],
    [{ timestamp: new Date(NaN) }, 'is not a valid time'],
    [{ timestamp: true }, 'timestamp has type boolean'],
    [{ stock_price: Number.NaN }, 'stock_price is NaN'],
    [{ stock_price: Infinity }, 'stock_price is Infinity'],
    [{ sales_trend: -Infinity }, 'sales_trend is -Infinity'],
    [{ sales_trend: null }, 'sales_trend is missing'],
    [{ stock_price: '12.5' }, 'stock_price has type string, not a number'],
    [{ stock_price: -0.5 }, 'stock_price -0.5 is negative'],
    [{ sales_trend: -3 }, 'sales_trend -3 is negative'],
    [{ timestamp: Date.UTC(2999, 0, 1) }, 'timestamp 2999-01-01T00:00:00.000Z is more than a year in the future'],
  ])('rejects %o with a reason', (change, reason) => {
    const verdict = validateRow({ ...good, ...change });
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.reason).toContain(reason);
  });
});

describe('timestamps', () => {
  it('accepts old, out-of-order and near-future rows: the ETL handles late rows', () => {
    const now = Date.UTC(2026, 10, 24);
    expect(validateRow({ ...good, timestamp: Date.UTC(1999, 0, 1) }, now).ok).toBe(true);
    expect(validateRow({ ...good, timestamp: now + 30 * 86_400_000 }, now).ok).toBe(true);
    expect(validateRow({ ...good, timestamp: now + 400 * 86_400_000 }, now).ok).toBe(false);
  });
});

describe('parseId and parseTimestamp', () => {
  it('take ids as strings, numbers or bigints', () => {
    expect(parseId('7')).toBe(7);
    expect(parseId(7)).toBe(7);
    expect(parseId(7n)).toBe(7);
  });
  it('take timestamps as Dates, epoch ms, bigints or ISO text', () => {
    const ms = Date.UTC(2024, 1, 29, 12, 30);
    expect(parseTimestamp(new Date(ms))).toBe(ms);
    expect(parseTimestamp(ms)).toBe(ms);
    expect(parseTimestamp(BigInt(ms))).toBe(ms);
    expect(parseTimestamp('2024-02-29T12:30:00Z')).toBe(ms);
  });
  it('take ISO text without an offset as UTC, as Parquet timestamps without a zone are (iso-time.test.ts runs it under other zones)', () => {
    expect(parseTimestamp('2024-02-29T12:30:00')).toBe(Date.UTC(2024, 1, 29, 12, 30));
    expect(parseTimestamp('2024-02-29 12:30')).toBe(Date.UTC(2024, 1, 29, 12, 30));
    expect(parseTimestamp('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
  });
});

describe('values PostgreSQL would refuse', () => {
  // timestamptz runs from 4714-11-24 BC (proleptic Gregorian; "4713 BC" in the
  // Julian calendar of PostgreSQL's docs) to 294276 AD.
  it('knows the earliest instant timestamptz holds', () => {
    expect(PG_MIN_TIMESTAMP_MS).toBe(Date.UTC(-4713, 10, 24));
    expect(new Date(PG_MIN_TIMESTAMP_MS).toISOString()).toBe('-004713-11-24T00:00:00.000Z');
  });

  it('rejects a timestamp before 4713 BC, saying so', () => {
    const verdict = validateRow({ ...good, timestamp: PG_MIN_TIMESTAMP_MS - 1 });
    expect(verdict).toEqual({
      ok: false,
      reason: 'timestamp -004713-11-23T23:59:59.999Z is before 4713 BC, the earliest time PostgreSQL stores',
    });
    expect(validateRow({ ...good, timestamp: Date.UTC(-10_000, 0, 1) }).ok).toBe(false);
    expect(validateRow({ ...good, timestamp: '-010000-01-01T00:00:00Z' }).ok).toBe(false);
  });

  it('accepts the earliest time PostgreSQL stores', () => {
    expect(validateRow({ ...good, timestamp: PG_MIN_TIMESTAMP_MS }).ok).toBe(true);
  });

  it('rejects timestamps beyond what a JavaScript Date holds without failing itself', () => {
    // An INT64 column of milliseconds can hold them; toISOString would throw.
    expect(validateRow({ ...good, timestamp: 9e15 })).toEqual({
      ok: false,
      reason: 'timestamp 9000000000000000 ms after 1970 is more than a year in the future',
    });
    expect(validateRow({ ...good, timestamp: -9e15 })).toEqual({
      ok: false,
      reason: 'timestamp 9000000000000000 ms before 1970 is before 4713 BC, the earliest time PostgreSQL stores',
    });
    expect(validateRow({ ...good, timestamp: 2n ** 62n }).ok).toBe(false);
  });

  it('takes an integer price column (bigints) as numbers, as double precision does', () => {
    expect(validateRow({ ...good, stock_price: 12n, sales_trend: 7n })).toEqual({
      ok: true,
      record: { ...good, id: 42, stock_price: 12, sales_trend: 7 },
    });
    expect(validateRow({ ...good, stock_price: -12n })).toEqual({ ok: false, reason: 'stock_price -12 is negative' });
  });
});

describe('a huge cell', () => {
  const huge = (n: number, ch = 'x') => ch.repeat(n);

  it.each([
    [{ id: huge(2_000_000) }, 'id is a 2,000,000-character string, not an integer'],
    [{ id: huge(2_000_000, '7') }, 'id is a 2,000,000-digit number, too large'],
    [{ timestamp: huge(2_000_000) }, 'timestamp is a 2,000,000-character string, not a valid time'],
    [{ id: huge(65) }, 'id is a 65-character string, not an integer'],
  ])('is described, not quoted: %#', (change, reason) => {
    expect(validateRow({ ...good, ...change })).toEqual({ ok: false, reason });
  });

  it('short values are still quoted', () => {
    expect(validateRow({ ...good, id: huge(64) })).toEqual({ ok: false, reason: `id "${huge(64)}" is not an integer` });
    expect(validateRow({ ...good, timestamp: 'soon' })).toEqual({
      ok: false,
      reason: 'timestamp "soon" is not a valid time: it is not ISO-8601 (such as 2024-01-31T13:45:00Z)',
    });
  });
});
