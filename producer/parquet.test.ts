import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, writeDataset } from '../dataset/generate.js';
import { ParquetInputError, openParquet, readAhead, readRowGroups } from './parquet.js';
import { validateRow } from './validate.js';

const fixture = (name: string) => path.join(import.meta.dirname, 'fixtures', name);

async function readAll(file: string) {
  const source = await openParquet(file);
  const rows = [];
  for await (const group of readRowGroups(source, file)) {
    for (let i = 0; i < group.rows; i++) {
      const c = group.columns;
      rows.push({ id: c.id[i], timestamp: c.timestamp[i], stock_price: c.stock_price[i], sales_trend: c.sales_trend[i] });
    }
  }
  return { source, rows };
}

describe('reading Parquet written by other tools', () => {
  // make_fixtures.py: 50 rows, ids "1".."50", a row a minute from 2024-01-01.
  const expected = Array.from({ length: 50 }, (_, i) => ({
    id: i + 1,
    timestamp: Date.UTC(2024, 0, 1) + i * 60_000,
    stock_price: Math.round((100 + i * 0.5) * 100) / 100,
    sales_trend: Math.round((200 + i * 1.25) * 100) / 100,
  }));

  it.each([
    'pandas_ns_snappy.parquet',
    'pyarrow_us_gzip.parquet',
    'pyarrow_ms_zstd.parquet',
    'pyarrow_ns_uncompressed.parquet',
    'pyarrow_us_lz4_rowgroups.parquet',
    'pyarrow_int96_brotli.parquet',
    'pandas_int_id.parquet',
    'duckdb_snappy.parquet',
  ])('%s gives the same 50 valid rows', async (name) => {
    const { rows } = await readAll(fixture(name));
    const records = rows.map((row) => {
      const verdict = validateRow(row);
      if (!verdict.ok) throw new Error(verdict.reason);
      return verdict.record;
    });
    expect(records).toEqual(expected);
  });

  it('reads a file of many row groups one group at a time', async () => {
    const { source } = await readAll(fixture('pyarrow_us_lz4_rowgroups.parquet'));
    expect(source.rowGroups.length).toBe(8);
    expect(source.rowGroups.map((g) => g.rowStart)).toEqual([0, 7, 14, 21, 28, 35, 42, 49]);
  });

  it('reads our own generated file back exactly', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-pq-'));
    try {
      const data = generate({ rows: 3000, seed: 9 });
      writeDataset(data, path.join(dir, 'g.parquet'), 1000);
      const { rows, source } = await readAll(path.join(dir, 'g.parquet'));
      expect(source.rowGroups.length).toBe(3);
      expect(rows.map((r) => r.id)).toEqual(data.id);
      expect(rows.map((r) => r.timestamp)).toEqual(Array.from(data.timestamp));
      expect(rows.map((r) => r.stock_price)).toEqual(Array.from(data.stock_price));
      expect(rows.map((r) => r.sales_trend)).toEqual(Array.from(data.sales_trend));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bad Parquet input', () => {
  it('names a missing column and what the file has', async () => {
    await expect(openParquet(fixture('missing_column.parquet'))).rejects.toThrow(
      /missing column sales_trend \(found: id, timestamp, stock_price\); the file needs id, timestamp, stock_price, sales_trend/,
    );
  });

  it('names a column of the wrong type', async () => {
    await expect(openParquet(fixture('wrong_type.parquet'))).rejects.toThrow(
      /column stock_price has type BYTE_ARRAY\/STRING: it must be a number/,
    );
  });

  it('calls a truncated file truncated', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-trunc-'));
    const file = path.join(dir, 't.parquet');
    try {
      const bytes = fs.readFileSync(fixture('pandas_ns_snappy.parquet'));
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - 200));
      const err = await openParquet(file).catch((e) => e);
      expect(err).toBeInstanceOf(ParquetInputError);
      expect(err.message).toMatch(/is not a readable Parquet file \(truncated or corrupt\?\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says how to get the dataset when the file does not exist', async () => {
    await expect(openParquet('/nonexistent/x.parquet')).rejects.toThrow(/does not exist: run `npm run generate`/);
  });

  it('hands bad rows to validation, which gives each a reason', async () => {
    const { rows } = await readAll(fixture('bad_rows.parquet'));
    const verdicts = rows.map((row) => validateRow(row));
    expect(verdicts.map((v) => (v.ok ? 'ok' : v.reason))).toEqual([
      'ok',
      'id is missing',
      'id -3 is not positive',
      'timestamp is missing',
      'stock_price is NaN',
      'sales_trend is -Infinity',
      'stock_price is Infinity',
      'id "abc" is not an integer',
      'stock_price is missing',
      'ok',
    ]);
  });
});

describe('readAhead', () => {
  it('hands out the same items, asking for the next one before the caller is done with this one', async () => {
    const asked: number[] = [];
    async function* items() {
      for (let i = 1; i <= 3; i++) {
        asked.push(i);
        yield i;
      }
    }
    const seen: [number, number[]][] = [];
    for await (const item of readAhead(items())) seen.push([item, [...asked]]);
    expect(seen).toEqual([
      [1, [1, 2]],
      [2, [1, 2, 3]],
      [3, [1, 2, 3]],
    ]);
  });

  it('reads the row groups of a file in order, from the one that holds the start row', async () => {
    const file = fixture('pyarrow_us_lz4_rowgroups.parquet');
    const source = await openParquet(file);
    const starts: number[] = [];
    for await (const group of readAhead(readRowGroups(source, file, 10))) starts.push(group.rowStart);
    expect(starts).toEqual([7, 14, 21, 28, 35, 42, 49]);
  });

  it('passes a failure on to the caller', async () => {
    async function* failing() {
      yield 1;
      throw new Error('row group 1 cannot be read');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const item of readAhead(failing())) seen.push(item);
      })(),
    ).rejects.toThrow('row group 1 cannot be read');
    expect(seen).toEqual([1]);
  });
});
