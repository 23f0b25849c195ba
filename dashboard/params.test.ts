import { describe, expect, it } from 'vitest';
import { bucketMinutes, MAX_BARS, parseRange, STOCK_MINUTES } from './params.mjs';

const q = (s: string) => new URLSearchParams(s);

describe('dashboard range parameters', () => {
  it('take seconds since 1970 or ISO-8601, and default to the whole table', () => {
    expect(parseRange(q(''))).toEqual({ ok: true, from: null, to: null, maxBars: 1500 });
    expect(parseRange(q('from=1704067200&to=2024-02-01T00:00:00Z&maxBars=800'))).toEqual({
      ok: true,
      from: new Date('2024-01-01T00:00:00Z'),
      to: new Date('2024-02-01T00:00:00Z'),
      maxBars: 800,
    });
  });
  it('refuse in a sentence what is not a time, a range backwards, or a bar count out of bounds', () => {
    expect(parseRange(q("from=1';drop table x"))).toEqual({ ok: false, error: expect.stringMatching(/^from must be a time/) });
    expect(parseRange(q('to=9e99'))).toEqual({ ok: false, error: expect.stringMatching(/^to must be a time/) });
    expect(parseRange(q('from=200&to=100'))).toEqual({ ok: false, error: 'from must be before to' });
    for (const bad of ['0', '9', '1.5', 'many', String(MAX_BARS + 1)]) {
      expect(parseRange(q(`maxBars=${bad}`))).toEqual({ ok: false, error: `maxBars must be a whole number from 10 to ${MAX_BARS}` });
    }
  });
});

describe('bucket width for a span', () => {
  const YEAR_MS = 366 * 24 * 3600_000;
  it('keeps the summary’s own buckets while they fit, else merges whole ones', () => {
    expect(bucketMinutes(24 * 3600_000, 1500, STOCK_MINUTES)).toBe(10);
    expect(bucketMinutes(YEAR_MS, 1500, STOCK_MINUTES)).toBe(360);
    expect(YEAR_MS / 60_000 / bucketMinutes(YEAR_MS, 1500, STOCK_MINUTES)).toBeLessThanOrEqual(1500);
    expect(bucketMinutes(YEAR_MS, 1500, 20) % 20).toBe(0);
  });
});
