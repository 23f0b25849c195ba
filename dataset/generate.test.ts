import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dayOfYear, generate, round2, seasonal, writeDataset } from './generate.js';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

describe('generate', () => {
  it('follows the demo layout: ids "1".., one row a minute from the start', () => {
    const data = generate({ rows: 3, start: '2024-01-01T00:00:00Z', seed: 1 });
    expect(data.id).toEqual(['1', '2', '3']);
    expect(Array.from(data.timestamp)).toEqual([0, 1, 2].map((i) => Date.UTC(2024, 0, 1) + i * 60_000));
  });

  it('gives the same rows for the same seed and other rows for another', () => {
    const a = generate({ rows: 1000, seed: 7 });
    const b = generate({ rows: 1000, seed: 7 });
    const c = generate({ rows: 1000, seed: 8 });
    expect(Array.from(a.stock_price)).toEqual(Array.from(b.stock_price));
    expect(Array.from(a.sales_trend)).toEqual(Array.from(b.sales_trend));
    expect(Array.from(a.stock_price)).not.toEqual(Array.from(c.stock_price));
  });

  it('writes a byte-identical file for the same seed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-gen-'));
    try {
      writeDataset(generate({ rows: 5000, seed: 3 }), path.join(dir, 'a.parquet'));
      writeDataset(generate({ rows: 5000, seed: 3 }), path.join(dir, 'b.parquet'));
      expect(fs.readFileSync(path.join(dir, 'a.parquet')).equals(fs.readFileSync(path.join(dir, 'b.parquet')))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('walks the stock price by Normal(0, 2) + 0.0002 steps, floored at 1, rounded to cents', () => {
    const n = 200_000;
    const { stock_price: price } = generate({ rows: n, seed: 11 });
    const steps: number[] = [];
    // Steps near the floor are clipped, and rounding adds at most a cent: keep the clean ones.
    for (let i = 1; i < n; i++) if (price[i - 1] > 20 && price[i] > 20) steps.push(price[i] - price[i - 1]);
    expect(steps.length).toBeGreaterThan(n / 2);
    // The standard error of the mean is 2/sqrt(n): 0.0002 itself is below what n can resolve.
    expect(Math.abs(mean(steps) - 0.0002)).toBeLessThan((4 * 2) / Math.sqrt(steps.length));
    expect(sd(steps)).toBeGreaterThan(1.97);
    expect(sd(steps)).toBeLessThan(2.03);
    expect(price.reduce((a, b) => Math.min(a, b), Infinity)).toBeGreaterThanOrEqual(1);
    for (const p of price.slice(0, 1000)) expect(round2(p)).toBe(p);
  });

  it('puts sales on the seasonal curve with Normal(0, 5) noise', () => {
    const data = generate({ rows: 527_040, seed: 5 });
    const residuals = Array.from(data.sales_trend, (s, i) => s - seasonal(data.timestamp[i]));
    expect(Math.abs(mean(residuals))).toBeLessThan(0.05);
    expect(sd(residuals)).toBeGreaterThan(4.97);
    expect(sd(residuals)).toBeLessThan(5.03);
    // Daily means follow 200 + 50 sin(2 pi doy / 365): 1,440 samples a day put them within ~0.5.
    const byDay = new Map<number, number[]>();
    data.sales_trend.forEach((s, i) => {
      const day = dayOfYear(data.timestamp[i]);
      (byDay.get(day) ?? byDay.set(day, []).get(day)!).push(s);
    });
    for (const [day, values] of byDay) {
      expect(Math.abs(mean(values) - (200 + 50 * Math.sin((2 * Math.PI * day) / 365))), `day ${day}`).toBeLessThan(0.6);
    }
    expect(byDay.size).toBe(366); // 2024 is a leap year
  });

  it('counts days of the year from 1', () => {
    expect(dayOfYear(Date.UTC(2024, 0, 1))).toBe(1);
    expect(dayOfYear(Date.UTC(2024, 11, 31, 23, 59))).toBe(366);
  });
});
