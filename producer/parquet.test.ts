import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { generate, writeDataset } from '../dataset/generate.js';
import { ParquetInputError, RowGroupError, checkSchema, openParquet, readAhead, readRowGroups } from './parquet.js';
import { validateRow } from './validate.js';

const fixture = (name: string) => path.join(import.meta.dirname, 'fixtures', name);

async function readAll(file: string, fromRow = 0, sliceRows?: number) {
  const source = await openParquet(file);
  const rows = [];
  for await (const group of readRowGroups(source, file, fromRow, sliceRows)) {
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

describe('reading a row group in slices, page by page', () => {
  // make_fixtures.py: one row group of 3,000 rows in pages of about 1,000: a
  // dictionary page, dictionary-encoded pages, then plain ones; a null sales_trend every 500 rows.
  const expected = Array.from({ length: 3000 }, (_, i) => ({
    id: String(i + 1),
    timestamp: Date.UTC(2024, 0, 1) + i * 60_000,
    stock_price: Math.round((100 + (i % 97) * 0.5) * 100) / 100,
    sales_trend: i % 500 === 7 ? null : Math.round((200 + i * 0.25) * 100) / 100,
  }));

  it.each(['one_group_small_pages_v1.parquet', 'one_group_small_pages_v2.parquet'])(
    '%s: any slice size, from any row, gives the same rows',
    async (name) => {
      const file = fixture(name);
      for (const [fromRow, sliceRows] of [
        [0, 65_536],
        [0, 1000],
        [0, 777],
        [1, 1],
        [1023, 500],
        [1024, 1024],
        [2500, 333],
        [2999, 10],
      ]) {
        const { rows, source } = await readAll(file, fromRow, sliceRows);
        expect(source.rowGroups).toEqual([{ rowStart: 0, rows: 3000 }]);
        expect(rows.length).toBe(3000 - fromRow);
        expect(rows).toEqual(expected.slice(fromRow));
      }
    },
  );

  it('hands out slices of at most sliceRows rows, in order, each saying where it starts', async () => {
    const file = fixture('one_group_small_pages_v1.parquet');
    const source = await openParquet(file);
    const slices: [number, number, number][] = [];
    for await (const slice of readRowGroups(source, file, 100, 1000)) slices.push([slice.index, slice.rowStart, slice.rows]);
    expect(slices).toEqual([
      [0, 100, 1000],
      [0, 1100, 1000],
      [0, 2100, 900],
    ]);
  });

  it('reads the column chunks of a large row group a little at a time, never whole', async () => {
    // 400,000 rows in one row group, pages of 64 KiB: each column chunk is MBs.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-pages-'));
    try {
      const data = generate({ rows: 400_000, seed: 5 });
      const file = path.join(dir, 'big-group.parquet');
      writeDataset(data, file, 400_000, 64 * 1024);
      const source = await openParquet(file);
      const chunkBytes = source.metadata.row_groups[0].columns.map((c) => Number(c.meta_data!.total_compressed_size));
      expect(Math.min(...chunkBytes)).toBeGreaterThan(1.25 * 1024 * 1024);
      const reads: number[] = [];
      const open = fs.promises.open;
      const spy = vi.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof open>) => {
        const handle = await open(...args);
        const read = handle.read.bind(handle) as (b: Uint8Array, o: number, l: number, p: number) => Promise<unknown>;
        handle.read = ((b: Uint8Array, o: number, l: number, p: number) => {
          reads.push(l);
          return read(b, o, l, p);
        }) as typeof handle.read;
        return handle;
      });

      let rows = 0;
      let lastId = 0;
      for await (const slice of readRowGroups(source, file)) {
        rows += slice.rows;
        lastId = Number(slice.columns.id[slice.rows - 1]);
      }
      expect(rows).toBe(400_000);
      expect(lastId).toBe(400_000);
      expect(reads.length).toBeGreaterThan(40);
      expect(Math.max(...reads)).toBeLessThanOrEqual(128 * 1024);
      spy.mockRestore();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a row group that cannot be read', () => {
  /** 3,000 rows in 3 row groups, the page header of row group 2's stock_price overwritten with garbage. */
  function corruptFile(dir: string) {
    const file = path.join(dir, 'corrupt.parquet');
    writeDataset(generate({ rows: 3000, seed: 4 }), file, 1000);
    return file;
  }

  it('fails with a RowGroupError naming the file, the row group and its rows, after handing out the rows before it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-corrupt-'));
    try {
      const file = corruptFile(dir);
      const source = await openParquet(file);
      const page = Number(source.metadata.row_groups[2].columns[2].meta_data!.data_page_offset);
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, page);
      fs.closeSync(fd);
      const starts: number[] = [];
      const err = await (async () => {
        for await (const slice of readRowGroups(await openParquet(file), file)) starts.push(slice.rowStart);
      })().catch((e) => e);
      expect(starts).toEqual([0, 1000]);
      expect(err).toBeInstanceOf(RowGroupError);
      expect(err).toBeInstanceOf(ParquetInputError);
      expect(err).toMatchObject({ group: 2, row: 2000 });
      expect(err.message).toMatch(
        new RegExp(`^${file}: row group 2 \\(rows 2,000 to 2,999\\) cannot be read \\(truncated or corrupt\\?\\): column stock_price`),
      );
      expect(err.message).not.toMatch(/\n/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says so when a page claims more bytes than its column chunk holds', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-corrupt-'));
    try {
      const file = corruptFile(dir);
      const source = await openParquet(file);
      // Row group 1 says its timestamp chunk is 10 bytes long: its first page runs past it.
      source.metadata.row_groups[1].columns[1].meta_data!.total_compressed_size = 10n;
      const err = await (async () => {
        for await (const _ of readRowGroups(source, file, 1000)) {
        }
      })().catch((e) => e);
      expect(err).toMatchObject({ group: 1, row: 1000 });
      expect(err.message).toMatch(/row group 1 .* cannot be read .*column timestamp/);
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

  it('refuses a list column: one value per row', () => {
    const schema = [
      { name: 'schema', num_children: 4 },
      { name: 'id', type: 'INT64', repetition_type: 'REPEATED' },
      { name: 'timestamp', type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' },
      { name: 'stock_price', type: 'DOUBLE' },
      { name: 'sales_trend', type: 'DOUBLE' },
    ] as const;
    expect(checkSchema(schema as unknown as Parameters<typeof checkSchema>[0])).toBe(
      'column id is a list (REPEATED): it must hold one value per row',
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

  it('reads the row groups of a file in order, from the start row', async () => {
    const file = fixture('pyarrow_us_lz4_rowgroups.parquet');
    const source = await openParquet(file);
    const starts: number[] = [];
    for await (const group of readAhead(readRowGroups(source, file, 10))) starts.push(group.rowStart);
    expect(starts).toEqual([10, 14, 21, 28, 35, 42, 49]);
  });

  it('when the caller stops early, waits for the read in flight, drops its failure and closes the items', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let closed = false;
      let second: 'asked' | 'failed' | undefined;
      async function* items() {
        try {
          yield 1;
          second = 'asked';
          await new Promise((resolve) => setTimeout(resolve, 20));
          second = 'failed';
          throw new Error('row group 1 cannot be read');
        } finally {
          closed = true;
        }
      }
      for await (const item of readAhead(items())) {
        expect(item).toBe(1);
        break;
      }
      // The loop ended only once the read in flight had settled.
      expect(second).toBe('failed');
      expect(closed).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('when the caller fails, closes the items it read ahead of', async () => {
    let closed = false;
    async function* items() {
      try {
        for (let i = 1; i <= 5; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const err = await (async () => {
      for await (const item of readAhead(items())) if (item === 2) throw new Error('Kafka is down');
    })().catch((e) => e);
    expect(err.message).toBe('Kafka is down');
    expect(closed).toBe(true);
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
