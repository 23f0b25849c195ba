import { describe, expect, it } from 'vitest';
import { parseId, parseTimestamp, validateRow } from './validate.js';

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
    [{ timestamp: 'yesterday' }, 'timestamp yesterday is not a valid time'],
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
});
