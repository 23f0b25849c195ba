import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE, readAvsc } from './avro.js';
import type { SyntheticRecord } from './avro.js';
import { MAX_VALUE_BYTES, chunkRanges, jsonSafe, rejection, rowAt, shapeChunk } from './chunk.js';
import type { RowGroup } from './parquet.js';
import { partitionFor } from './partition.js';
import { frame } from './wire.js';

const T0 = Date.UTC(2024, 0, 1);

/** A row group starting at file row `rowStart`, from rows given as tuples. */
function group(rowStart: number, rows: [unknown, unknown, unknown, unknown][]): RowGroup {
  return {
    index: 0,
    rowStart,
    rows: rows.length,
    columns: {
      id: rows.map((r) => r[0]),
      timestamp: rows.map((r) => r[1]),
      stock_price: rows.map((r) => r[2]),
      sales_trend: rows.map((r) => r[3]),
    },
  };
}

const good = (id: number): [unknown, unknown, unknown, unknown] => [String(id), T0 + id * 60_000, 100 + id, 200 + id];

describe('chunkRanges', () => {
  const all = (...args: Parameters<typeof chunkRanges>) => [...chunkRanges(...args)];

  it('cuts a row group into chunks, the last one shorter', () => {
    expect(all(0, 10, 0, 100, 4)).toEqual([
      [0, 4],
      [4, 8],
      [8, 10],
    ]);
  });
  it('counts in file rows: a group starting at row 100 yields rows 100..', () => {
    expect(all(100, 5, 0, Infinity, 10)).toEqual([[100, 105]]);
  });
  it('starts a resumed run at its start row, inside the group', () => {
    expect(all(100, 100, 150, 1000, 40)).toEqual([
      [150, 190],
      [190, 200],
    ]);
  });
  it('ends at the last row (--limit), inside the group', () => {
    expect(all(100, 100, 100, 130, 20)).toEqual([
      [100, 120],
      [120, 130],
    ]);
  });
  it('yields nothing for a group before the start or after the last row', () => {
    expect(all(0, 100, 100, 1000, 10)).toEqual([]);
    expect(all(200, 100, 0, 200, 10)).toEqual([]);
  });
});

describe('rowAt', () => {
  it('takes row i of the group from each column', () => {
    const g = group(500, [good(1), good(2), ['x', null, -1, 'y']]);
    expect(rowAt(g, 1)).toEqual({ id: '2', timestamp: T0 + 120_000, stock_price: 102, sales_trend: 202 });
    expect(rowAt(g, 2)).toEqual({ id: 'x', timestamp: null, stock_price: -1, sales_trend: 'y' });
  });
});

describe('jsonSafe', () => {
  it.each([
    [12n, '12'],
    [Number.NaN, 'NaN'],
    [-Infinity, '-Infinity'],
    [new Date(T0), '2024-01-01T00:00:00.000Z'],
    [new Date(NaN), 'Invalid Date'],
    [undefined, null],
    [null, null],
    ['abc', 'abc'],
    [1.5, 1.5],
  ])('makes %o JSON-safe as %o', (value, expected) => {
    expect(jsonSafe(value)).toEqual(expected);
  });
  it('keeps every value through JSON.stringify', () => {
    expect(JSON.parse(JSON.stringify({ v: jsonSafe(2n ** 70n) }))).toEqual({ v: '1180591620717411303424' });
  });
});

describe('rejection', () => {
  it('carries the raw row as JSON, the reason, the file and the row index', () => {
    const message = rejection(
      '/d/x.parquet',
      7,
      { id: 9n, timestamp: new Date(NaN), stock_price: Infinity, sales_trend: undefined },
      'why',
    );
    expect(message.key).toBe('7');
    expect(message.headers).toEqual({ reason: 'why' });
    const value = JSON.parse(message.value as string);
    expect(value).toEqual({
      reason: 'why',
      file: '/d/x.parquet',
      row_index: 7,
      row: { id: '9', timestamp: 'Invalid Date', stock_price: 'Infinity', sales_trend: null },
      rejected_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    // The field order is the wire format's.
    expect(Object.keys(value)).toEqual(['reason', 'file', 'row_index', 'row', 'rejected_at']);
  });
});

describe('a rejection of huge values', () => {
  const bytes = (m: { value: unknown; headers?: unknown; key?: unknown }) =>
    Buffer.byteLength(m.value as string) + Buffer.byteLength(JSON.stringify(m.headers ?? {})) + Buffer.byteLength(String(m.key));

  it('cuts a 2 MB id to 64 KiB, saying how many characters were cut, and says what was wrong', () => {
    const id = '9'.repeat(1_000_000) + 'x'.repeat(1_000_000);
    const message = rejection(
      '/d/x.parquet',
      7,
      { id, timestamp: T0, stock_price: 1, sales_trend: 2 },
      'id is a 2,000,000-character string, not an integer',
    );
    expect(bytes(message)).toBeLessThan(70 * 1024);
    const value = JSON.parse(message.value as string);
    expect(value.reason).toBe('id is a 2,000,000-character string, not an integer');
    expect(message.headers).toEqual({ reason: 'id is a 2,000,000-character string, not an integer' });
    expect(value.row.timestamp).toBe(T0);
    const kept = value.row.id as string;
    const m = /^(9+)… \[(\d[\d,]*) more characters cut\]$/.exec(kept);
    expect(m).not.toBeNull();
    expect(m![1].length + Number(m![2].replace(/,/g, ''))).toBe(2_000_000);
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(MAX_VALUE_BYTES);
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeGreaterThan(MAX_VALUE_BYTES - 100);
  });

  it.each([
    ['control characters (6 bytes each in JSON)', '\u0001'],
    ['three-byte characters', '€'],
    ['astral characters (surrogate pairs)', '😀'],
    ['quotes', '"'],
  ])('keeps the whole message well under 1 MB with %s in every column', (_, ch) => {
    const huge = ch.repeat(2_000_000 / ch.length);
    const message = rejection('/d/x.parquet', 7, { id: huge, timestamp: huge, stock_price: huge, sales_trend: huge }, 'why');
    expect(bytes(message)).toBeLessThan(300 * 1024);
    const row = JSON.parse(message.value as string).row;
    for (const v of Object.values(row) as string[]) {
      expect(Buffer.byteLength(JSON.stringify(v))).toBeLessThanOrEqual(MAX_VALUE_BYTES);
      expect(v).toMatch(/… \[[\d,]+ more characters cut\]$/);
      // Never half a surrogate pair.
      expect(v).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    }
  });

  it('leaves values up to the limit whole', () => {
    const v = 'y'.repeat(1000);
    const row = JSON.parse(rejection('/f', 1, { id: v, timestamp: null, stock_price: 1, sales_trend: 2 }, 'r').value as string).row;
    expect(row.id).toBe(v);
  });
});

describe('shapeChunk', () => {
  const { type } = readAvsc(SCHEMA_FILE);
  const encode = (record: SyntheticRecord) => frame(3, type.toBuffer(record));
  const opts = { partitions: 4, encode, file: '/d/x.parquet' };

  it('keys each valid row by its id, puts it on its partition and encodes it', () => {
    const g = group(
      1000,
      Array.from({ length: 20 }, (_, i) => good(i + 1)),
    );
    const chunk = shapeChunk(g, 1000, 1020, opts);
    expect(chunk).toMatchObject({ read: 20, sent: 20, skipped: 0, rejected: [], firstTs: T0 + 60_000, lastTs: T0 + 20 * 60_000 });
    expect(chunk.perLane).toHaveLength(4);
    const all = chunk.perLane.flat();
    expect(all).toHaveLength(20);
    for (const [partition, messages] of chunk.perLane.entries()) {
      for (const m of messages) {
        const id = Number((m.key as Buffer).toString('latin1'));
        expect(Object.keys(m)).toEqual(['key', 'value', 'partition']);
        expect(m.key).toEqual(Buffer.from(String(id), 'latin1'));
        expect(m.partition).toBe(partition);
        expect(partition).toBe(partitionFor(Buffer.from(String(id)), 4));
        expect(m.value).toEqual(encode({ id, timestamp: T0 + id * 60_000, stock_price: 100 + id, sales_trend: 200 + id }));
      }
    }
    // Several partitions are used, and each keeps the rows' order.
    expect(chunk.perLane.filter((lane) => lane.length > 0).length).toBeGreaterThan(1);
    for (const lane of chunk.perLane) {
      const ids = lane.map((m) => Number((m.key as Buffer).toString()));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
  });

  it('takes only rows [start, end) of the file from a group that starts later', () => {
    const g = group(
      1000,
      Array.from({ length: 10 }, (_, i) => good(i + 1)),
    );
    const chunk = shapeChunk(g, 1003, 1006, opts);
    const ids = chunk.perLane
      .flat()
      .map((m) => Number((m.key as Buffer).toString()))
      .sort((a, b) => a - b);
    expect(ids).toEqual([4, 5, 6]);
    expect(chunk.read).toBe(3);
  });

  it('sends an invalid row to the rejected messages, by its row index in the file, in order', () => {
    const g = group(40, [good(1), ['abc', T0, 1, 1], good(3), [null, T0, 1, 1]]);
    const chunk = shapeChunk(g, 40, 44, opts);
    expect(chunk.sent).toBe(2);
    expect(chunk.rejected.map((m) => m.key)).toEqual(['41', '43']);
    expect(chunk.rejected.map((m) => m.headers)).toEqual([{ reason: 'id "abc" is not an integer' }, { reason: 'id is missing' }]);
    expect(JSON.parse(chunk.rejected[0].value as string)).toMatchObject({ file: '/d/x.parquet', row_index: 41, row: { id: 'abc' } });
  });

  it('--from-id sends and rejects only the rows it selects: those with an id of N or more', () => {
    const g = group(0, [
      good(1),
      good(2),
      ['-1', T0, 1, 1], // no valid id: in no --from-id selection
      ['abc', T0, 1, 1],
      ['2', T0, Number.NaN, 1], // below N, invalid otherwise: not this run's to reject
      good(3),
      ['4', T0, -1, 1], // selected, invalid: rejected
      good(5),
    ]);
    const chunk = shapeChunk(g, 0, 8, { ...opts, fromId: 3 });
    expect(chunk).toMatchObject({ read: 8, sent: 2, skipped: 5, firstTs: T0 + 3 * 60_000, lastTs: T0 + 5 * 60_000 });
    expect(chunk.rejected.map((m) => m.key)).toEqual(['6']);
    expect(chunk.rejected.map((m) => m.headers)).toEqual([{ reason: 'stock_price -1 is negative' }]);
    expect(
      chunk.perLane
        .flat()
        .map((m) => (m.key as Buffer).toString())
        .sort(),
    ).toEqual(['3', '5']);
  });

  it('without --from-id rejects every invalid row', () => {
    const g = group(0, [good(1), ['-1', T0, 1, 1], ['abc', T0, 1, 1], ['2', T0, Number.NaN, 1]]);
    const chunk = shapeChunk(g, 0, 4, opts);
    expect(chunk).toMatchObject({ read: 4, sent: 1, skipped: 0 });
    expect(chunk.rejected.map((m) => m.key)).toEqual(['1', '2', '3']);
  });

  it('has no timestamps when it sends nothing', () => {
    const chunk = shapeChunk(group(0, [[null, T0, 1, 1]]), 0, 1, opts);
    expect(chunk.sent).toBe(0);
    expect(chunk.firstTs).toBeNaN();
    expect(chunk.lastTs).toBeNaN();
    expect(chunk.perLane.flat()).toEqual([]);
  });
});
