import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SchemaElement } from 'hyparquet';
import { parquetWriteFile } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { decimalScale, decimalValue, scaleDecimals, unscaledOf } from './decimal.js';
import { ParquetInputError, openParquet, readRowGroups } from './parquet.js';
import { validateRow } from './validate.js';

const el = (over: Partial<SchemaElement>): SchemaElement => ({ name: 'stock_price', ...over }) as SchemaElement;
const logical = (scale: number, precision: number) => ({ type: 'DECIMAL' as const, scale, precision });

describe('decimalScale', () => {
  it('is null for a column that is no DECIMAL', () => {
    expect(decimalScale(el({ type: 'DOUBLE' }))).toBeNull();
    expect(decimalScale(el({ type: 'INT64', logical_type: { type: 'INTEGER', bitWidth: 64, isSigned: true } }))).toBeNull();
  });
  it('reads the logical type, the converted type, or both (the logical one wins)', () => {
    expect(decimalScale(el({ type: 'INT32', logical_type: logical(2, 9) }))).toBe(2);
    expect(decimalScale(el({ type: 'INT64', converted_type: 'DECIMAL', scale: 3, precision: 18 }))).toBe(3);
    expect(decimalScale(el({ type: 'INT64', converted_type: 'DECIMAL', precision: 18 }))).toBe(0);
    expect(decimalScale(el({ type: 'BYTE_ARRAY', converted_type: 'DECIMAL', scale: 1, logical_type: logical(4, 30) }))).toBe(4);
  });
  it('names what cannot be read, in a phrase the caller puts after the column name', () => {
    expect(decimalScale(el({ type: 'DOUBLE', logical_type: logical(2, 9) }))).toBe(
      'is DECIMAL(9,2) stored as DOUBLE, which Parquet does not allow: write it as DOUBLE',
    );
    expect(decimalScale(el({ type: 'INT32', logical_type: logical(5, 3) }))).toBe(
      'is DECIMAL(3,5), whose scale is not between 0 and its precision: write it as DOUBLE',
    );
    expect(decimalScale(el({ type: 'INT32', logical_type: logical(-1, 3) }))).toMatch(/^is DECIMAL\(3,-1\), whose scale/);
  });
});

describe('decimal values', () => {
  it('reads big-endian two’s complement bytes', () => {
    const b = (...bytes: number[]) => Uint8Array.from(bytes);
    expect(unscaledOf(b())).toBe(0n);
    expect(unscaledOf(b(0x00))).toBe(0n);
    expect(unscaledOf(b(0x7f))).toBe(127n);
    expect(unscaledOf(b(0x80))).toBe(-128n);
    expect(unscaledOf(b(0xff))).toBe(-1n);
    expect(unscaledOf(b(0x00, 0x80))).toBe(128n);
    expect(unscaledOf(b(0xff, 0x7f))).toBe(-129n);
    expect(unscaledOf(b(0x27, 0x15))).toBe(10_005n);
    // DECIMAL(38, x) fills 16 bytes.
    expect(unscaledOf(new Uint8Array(16).fill(0xff))).toBe(-1n);
    expect(unscaledOf(Uint8Array.from([0x7f, ...new Array(15).fill(0xff)]))).toBe(2n ** 127n - 1n);
  });

  it('divides by 10^scale into the double nearest the decimal, as a DOUBLE column holds it', () => {
    // 115 * 10 ** -2 is 1.1500000000000001 (hyparquet's way): the text is parsed instead.
    expect(115 * 10 ** -2).not.toBe(1.15);
    expect(decimalValue(115, 2)).toBe(1.15);
    expect(decimalValue(3n, 1)).toBe(0.3);
    expect(decimalValue(10_005, 2)).toBe(100.05);
    expect(decimalValue(10_005n, 2)).toBe(100.05);
    expect(decimalValue(Uint8Array.from([0x27, 0x15]), 2)).toBe(100.05);
    expect(decimalValue(-10_005, 2)).toBe(-100.05);
    expect(decimalValue(1, 9)).toBe(1e-9);
    expect(decimalValue(123_456_789_012_345_678_901_234_567_890n, 10)).toBe(Number('12345678901234567890.123456789'));
    expect(decimalValue(0, 4)).toBe(0);
  });

  it('keeps an integer exact with scale 0 (a bigint past 2^53), so ids stay ids', () => {
    expect(decimalValue(7, 0)).toBe(7);
    expect(decimalValue(2n ** 60n, 0)).toBe(2n ** 60n);
    expect(decimalValue(Uint8Array.from([0x01, 0x00]), 0)).toBe(256n);
  });

  it('scales a page and leaves its nulls null', () => {
    expect(scaleDecimals(Int32Array.from([10_005, -1]), 2)).toEqual([100.05, -0.01]);
    expect(scaleDecimals([null, 5n, undefined], 1)).toEqual([null, 0.5, undefined]);
  });
});

describe('reading DECIMAL columns from Parquet', () => {
  const fixture = (name: string) => path.join(import.meta.dirname, 'fixtures', name);

  async function verdicts(file: string) {
    const out = [];
    for await (const g of readRowGroups(await openParquet(file), file)) {
      const c = g.columns;
      for (let i = 0; i < g.rows; i++) {
        const v = validateRow({ id: c.id[i], timestamp: c.timestamp[i], stock_price: c.stock_price[i], sales_trend: c.sales_trend[i] });
        out.push(v.ok ? v.record : v.reason);
      }
    }
    return out;
  }

  // make_type_fixtures.py: pyarrow writes the logical and the converted type,
  // as FIXED_LEN_BYTE_ARRAY, or as INT32/INT64 with store_decimal_as_integer.
  it.each(['decimals_pyarrow_flba.parquet', 'decimals_pyarrow_int.parquet'])('%s, as pyarrow writes them', async (name) => {
    const at = (i: number) => Date.UTC(2024, 0, 1) + i * 60_000;
    expect(await verdicts(fixture(name))).toEqual([
      { id: 1, timestamp: at(0), stock_price: 100.05, sales_trend: 200.125 },
      { id: 2, timestamp: at(1), stock_price: 0.01, sales_trend: 0.001 },
      { id: 3, timestamp: at(2), stock_price: 1_234_567.89, sales_trend: Number('999999999999999.999') },
      'stock_price is missing',
      { id: 5, timestamp: at(4), stock_price: 7, sales_trend: 0 },
    ]);
  });

  /** A file whose prices carry only the logical type DECIMAL(p, 2), stored as `type`; written with hyparquet-writer. */
  function logicalOnly(dir: string, type: 'INT32' | 'INT64' | 'FIXED_LEN_BYTE_ARRAY' | 'BYTE_ARRAY', unscaled: number[]) {
    const bytes = (n: number, width: number) => {
      const out = new Uint8Array(width);
      let v = BigInt.asUintN(width * 8, BigInt(n));
      for (let i = width - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
      return out;
    };
    const data =
      type === 'INT32'
        ? unscaled
        : type === 'INT64'
          ? unscaled.map(BigInt)
          : unscaled.map((n) => bytes(n, type === 'BYTE_ARRAY' ? 4 + (Math.abs(n) % 3) : 8));
    const price = {
      type,
      repetition_type: 'REQUIRED',
      logical_type: logical(2, 9),
      ...(type === 'FIXED_LEN_BYTE_ARRAY' ? { type_length: 8 } : {}),
    } as const;
    const file = path.join(dir, `${type}.parquet`);
    parquetWriteFile({
      filename: file,
      schema: [
        { name: 'root', num_children: 4 },
        { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
        { name: 'timestamp', type: 'INT64', repetition_type: 'REQUIRED', converted_type: 'TIMESTAMP_MILLIS' },
        { name: 'stock_price', ...price },
        { name: 'sales_trend', ...price },
      ] as SchemaElement[],
      columnData: [
        { name: 'id', data: unscaled.map((_, i) => BigInt(i + 1)) },
        { name: 'timestamp', data: unscaled.map(() => BigInt(Date.UTC(2024, 0, 1))) },
        { name: 'stock_price', data },
        { name: 'sales_trend', data },
      ],
    });
    return file;
  }

  // Before, these came out 10^scale too large (100.05 as 10005), or as text.
  it.each(['INT32', 'INT64', 'FIXED_LEN_BYTE_ARRAY', 'BYTE_ARRAY'] as const)('with only the logical type, stored as %s', async (type) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-decimal-'));
    try {
      const file = logicalOnly(dir, type, [10_005, 1, 99_999_999, 115, 0]);
      const meta = await openParquet(file);
      const price = meta.metadata.schema.find((e) => e.name === 'stock_price')!;
      expect(price.converted_type).toBeUndefined();
      expect(price.logical_type).toEqual(logical(2, 9));
      const records = await verdicts(file);
      expect(records.map((r) => typeof r !== 'string' && [r.stock_price, r.sales_trend])).toEqual([
        [100.05, 100.05],
        [0.01, 0.01],
        [999_999.99, 999_999.99],
        [1.15, 1.15],
        [0, 0],
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a negative DECIMAL price is refused as any negative price is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-decimal-'));
    try {
      expect(await verdicts(logicalOnly(dir, 'FIXED_LEN_BYTE_ARRAY', [-250]))).toEqual(['stock_price -2.5 is negative']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses in one line a DECIMAL it cannot read', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-decimal-'));
    try {
      const file = path.join(dir, 'bad-scale.parquet');
      parquetWriteFile({
        filename: file,
        schema: [
          { name: 'root', num_children: 4 },
          { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
          { name: 'timestamp', type: 'INT64', repetition_type: 'REQUIRED', converted_type: 'TIMESTAMP_MILLIS' },
          { name: 'stock_price', type: 'INT32', repetition_type: 'REQUIRED', logical_type: logical(4, 2) },
          { name: 'sales_trend', type: 'DOUBLE', repetition_type: 'REQUIRED' },
        ] as SchemaElement[],
        columnData: [
          { name: 'id', data: [1n] },
          { name: 'timestamp', data: [0n] },
          { name: 'stock_price', data: [1] },
          { name: 'sales_trend', data: [1] },
        ],
      });
      const err = await openParquet(file).catch((e) => e);
      expect(err).toBeInstanceOf(ParquetInputError);
      expect(err.message).toBe(
        `${file}: column stock_price is DECIMAL(2,4), whose scale is not between 0 and its precision: write it as DOUBLE`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
