// Reads a Parquet file a slice of rows at a time (SLICE_ROWS of a row group),
// page by page, so memory stays bounded by the slice and the largest page,
// not by the row group: pandas/pyarrow write row groups of 1M rows, Spark of
// 128 MB. hyparquet's parquetRead would fetch a whole column chunk for any
// row range (without an offset index), so the pages are read here, with
// hyparquet's own page decoder. Accepts what common writers produce:
// pandas/pyarrow (timestamps in ns, us or ms, or INT96 as Spark writes them),
// DuckDB, hyparquet-writer; any codec hyparquet-compressors knows.
import fs from 'node:fs';
import { asyncBufferFromFile, parquetMetadataAsync, parquetSchema } from 'hyparquet';
import type { AsyncBuffer, ColumnMetaData, DecodedArray, FileMetaData, PageHeader, SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { parquetHeader, readPage } from 'hyparquet/src/column.js';
import { DEFAULT_PARSERS, convert } from 'hyparquet/src/convert.js';
import { getTreePath, isFlatColumn } from 'hyparquet/src/schema.js';
import { UserError } from '#lib/errors.mjs';
import { decimalScale, scaleDecimals } from './decimal.js';

export const COLUMNS = ['id', 'timestamp', 'stock_price', 'sales_trend'] as const;
export type Column = (typeof COLUMNS)[number];

export class ParquetInputError extends UserError {}

/** A row group that cannot be read: which one, and the first row not read. */
export class RowGroupError extends ParquetInputError {
  readonly group: number;
  readonly row: number;
  /** @param row the first row of the slice that failed */
  constructor(message: string, group: number, row: number, cause: unknown) {
    super(message, { cause });
    this.group = group;
    this.row = row;
  }
}

/** Rows of a row group handed out at once: with readAhead, two slices are in memory. */
export const SLICE_ROWS = 16_384;

/**
 * Rows of one row group (all of it, or a slice of SLICE_ROWS): its columns,
 * Parquet timestamps already in epoch milliseconds, DECIMALs as numbers
 * (ISO-8601 text stays text: validation parses it).
 */
export interface RowGroup {
  /** The row group's index in the file. */
  index: number;
  /** Index of the first row in the file. */
  rowStart: number;
  rows: number;
  columns: Record<Column, ArrayLike<unknown>>;
}

// Milliseconds as plain numbers: no Date per row, and a null stays null so
// that validation, not the reader, reports it.
const parsers = {
  timestampFromMilliseconds: (v: bigint | null) => (v == null ? v : Number(v)),
  timestampFromMicroseconds: (v: bigint | null) => (v == null ? v : Number(v / 1000n)),
  timestampFromNanoseconds: (v: bigint | null) => (v == null ? v : Number(v / 1_000_000n)),
};

const describe = (el: SchemaElement) => [el.type, el.logical_type?.type ?? el.converted_type].filter(Boolean).join('/');

/**
 * Checks the four columns exist with types we can read. Pure (schema in,
 * error text or null out).
 */
export function checkSchema(schema: SchemaElement[]): string | null {
  const byName = new Map(schema.slice(1).map((el) => [el.name, el]));
  const missing = COLUMNS.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    const found = [...byName.keys()].join(', ');
    return `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (found: ${found}); the file needs id, timestamp, stock_price, sales_trend`;
  }
  const repeated = COLUMNS.find((name) => byName.get(name)!.repetition_type === 'REPEATED');
  if (repeated) return `column ${repeated} is a list (REPEATED): it must hold one value per row`;
  // A DECIMAL is read as the number it means (decimal.ts), whatever its physical type.
  const scales = new Map(COLUMNS.map((name) => [name, decimalScale(byName.get(name)!)]));
  for (const [name, scale] of scales) if (typeof scale === 'string') return `column ${name} ${scale}`;
  const id = byName.get('id')!;
  const isString =
    id.type === 'BYTE_ARRAY' &&
    scales.get('id') === null &&
    (id.converted_type === 'UTF8' || id.logical_type?.type === 'STRING' || !id.converted_type);
  if (!isString && id.type !== 'INT64' && id.type !== 'INT32' && scales.get('id') === null) {
    return `column id has type ${describe(id)}: it must be a string or an integer`;
  }
  const ts = byName.get('timestamp')!;
  const isTimestamp =
    ts.type === 'INT96' ||
    (ts.type === 'INT64' &&
      (ts.logical_type?.type === 'TIMESTAMP' || ts.converted_type === 'TIMESTAMP_MILLIS' || ts.converted_type === 'TIMESTAMP_MICROS'));
  const isText = ts.type === 'BYTE_ARRAY' && (ts.converted_type === 'UTF8' || ts.logical_type?.type === 'STRING');
  if (!isTimestamp && !isText) {
    return `column timestamp has type ${describe(ts)}: it must be a Parquet timestamp (or ISO-8601 text)`;
  }
  for (const name of ['stock_price', 'sales_trend'] as const) {
    const el = byName.get(name)!;
    if (scales.get(name) === null && !['DOUBLE', 'FLOAT', 'INT32', 'INT64'].includes(el.type ?? '')) {
      return `column ${name} has type ${describe(el)}: it must be a number (DOUBLE)`;
    }
  }
  return null;
}

export interface ParquetSource {
  file: AsyncBuffer;
  metadata: FileMetaData;
  rows: number;
  rowGroups: { rowStart: number; rows: number }[];
}

export async function openParquet(path: string): Promise<ParquetSource> {
  let file: AsyncBuffer;
  try {
    file = await asyncBufferFromFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ParquetInputError(
      code === 'ENOENT'
        ? `${path} does not exist: run \`npm run generate\` or pass --file <path>`
        : `cannot open ${path}: ${(err as Error).message}`,
    );
  }
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new ParquetInputError(`${path} is not a readable Parquet file (truncated or corrupt?): ${(err as Error).message}`);
  }
  const problem = checkSchema(metadata.schema);
  if (problem) throw new ParquetInputError(`${path}: ${problem}`);
  let rowStart = 0;
  const rowGroups = metadata.row_groups.map((rg) => {
    const group = { rowStart, rows: Number(rg.num_rows) };
    rowStart += group.rows;
    return group;
  });
  return { file, metadata, rows: rowStart, rowGroups };
}

/**
 * Reads the rows of the file in order from `fromRow`, row group after row
 * group, a slice of at most `sliceRows` rows at a time. A row group that
 * cannot be read fails with a RowGroupError naming it.
 */
export async function* readRowGroups(source: ParquetSource, path: string, fromRow = 0, sliceRows = SLICE_ROWS): AsyncGenerator<RowGroup> {
  const schemaTree = parquetSchema(source.metadata);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, 'r');
  } catch (err) {
    throw new ParquetInputError(
      `cannot read ${path} (${(err as Error).message}): it was there a moment ago; pass --file <path> of a file that stays`,
    );
  }
  // Exactly the bytes asked for, in a buffer of their own: decoded values may be views of it.
  const read: Read = async (from, to) => {
    const bytes = new Uint8Array(to - from);
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, from);
    return bytesRead < bytes.length ? bytes.subarray(0, bytesRead) : bytes;
  };
  try {
    for (const [index, group] of source.rowGroups.entries()) {
      const groupEnd = group.rowStart + group.rows;
      if (groupEnd <= fromRow || group.rows === 0) continue;
      let row = Math.max(fromRow, group.rowStart);
      const unreadable = (err: unknown) =>
        new RowGroupError(
          `${path}: row group ${index} (rows ${group.rowStart.toLocaleString('en')} to ${(groupEnd - 1).toLocaleString('en')}) cannot be read (truncated or corrupt?): ${(err as Error).message}`,
          index,
          row,
          err,
        );
      let columns: ColumnPages[];
      try {
        columns = COLUMNS.map(
          (name) => new ColumnPages(read, source.file.byteLength, columnChunk(source.metadata, schemaTree, index, name)),
        );
        await Promise.all(columns.map((column) => column.skip(row - group.rowStart)));
      } catch (err) {
        throw unreadable(err);
      }
      while (row < groupEnd) {
        const rows = Math.min(sliceRows, groupEnd - row);
        let data: ArrayLike<unknown>[];
        try {
          data = await Promise.all(columns.map((column) => column.take(rows)));
        } catch (err) {
          throw unreadable(err);
        }
        yield { index, rowStart: row, rows, columns: { id: data[0], timestamp: data[1], stock_price: data[2], sales_trend: data[3] } };
        row += rows;
      }
    }
  } finally {
    await handle.close();
  }
}

/**
 * The same items, each one asked for as soon as the one before is handed
 * out: the next slice is read while the caller works on this one (two in
 * memory at a time). When the caller stops early (a break, an error), the
 * read in flight is waited for and its failure, if any, dropped (nobody
 * wants that item), and the items are closed.
 */
export async function* readAhead<T>(items: AsyncIterator<T>): AsyncGenerator<T> {
  let pending: Promise<IteratorResult<T>> | undefined;
  const ask = () => {
    pending = items.next();
    // Handled where it is awaited; this only keeps a failure after an early
    // stop from becoming an unhandled rejection.
    pending.catch(() => {});
    return pending;
  };
  ask();
  try {
    while (true) {
      const next = await pending!;
      pending = undefined;
      if (next.done) return;
      ask();
      yield next.value;
    }
  } finally {
    if (pending) {
      const last = await pending.catch(() => ({ done: true }) as IteratorResult<T>);
      if (!last.done) await items.return?.();
    }
  }
}

type ColumnDecoder = Parameters<typeof readPage>[2];
/** Bytes [from, to) of the file (fewer at its end). */
type Read = (from: number, to: number) => Promise<Uint8Array>;

// A column chunk is read this many bytes at a time (small pages several to a
// read, a larger page whole). Larger reads were no faster and held more memory.
const READ_BYTES = 64 * 1024;
// Parsing a page header needs its bytes; most headers are small, one with
// statistics of a huge value is not: read more until it parses.
const HEADER_BYTES = 16 * 1024;
// A page larger than this is corruption, not data: refuse it before allocating.
const MAX_PAGE_BYTES = 512 * 1024 * 1024;
const EMPTY: unknown[] = [];

interface ChunkOfColumn {
  name: string;
  meta: ColumnMetaData;
  decoder: ColumnDecoder;
  /** A DECIMAL column's scale: its values come raw from hyparquet, scaled here. */
  decimalScale: number | null;
}

function columnChunk(metadata: FileMetaData, schemaTree: ReturnType<typeof parquetSchema>, group: number, name: Column): ChunkOfColumn {
  const chunk = metadata.row_groups[group].columns.find(
    (c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === name,
  );
  if (!chunk?.meta_data) throw new Error(`column ${name} is missing from the row group`);
  if (chunk.file_path) throw new Error(`column ${name} lives in another file (${chunk.file_path}), which is not supported`);
  const meta = chunk.meta_data;
  const schemaPath = getTreePath(schemaTree, meta.path_in_schema);
  if (!isFlatColumn(schemaPath)) throw new Error(`column ${name} is nested: it must hold one value per row`);
  const element = schemaPath[schemaPath.length - 1].element;
  const scale = decimalScale(element);
  if (typeof scale === 'string') throw new Error(`column ${name} ${scale}`);
  const decoder: ColumnDecoder = {
    pathInSchema: meta.path_in_schema,
    // hyparquet scales only some DECIMALs (and reads a BYTE_ARRAY one as
    // text): without the annotations it hands over every one raw.
    element: scale === null ? element : { ...element, converted_type: undefined, logical_type: undefined },
    utf8: scale === null,
    schemaPath,
    type: meta.type,
    codec: meta.codec,
    compressors,
    parsers: { ...DEFAULT_PARSERS, ...parsers },
  };
  return { name, meta, decoder, decimalScale: scale };
}

/**
 * One column chunk, read page by page: holds the dictionary and the decoded
 * values of one page at a time, and hands out values in order.
 */
class ColumnPages {
  private readonly read: Read;
  private readonly column: ChunkOfColumn;
  /** Where the next page header starts, and where the chunk ends, in the file. */
  private pos: number;
  private readonly end: number;
  private dictionary: DecodedArray | undefined;
  /** The bytes last read from the file, and where they start. */
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;
  private page: ArrayLike<unknown> = EMPTY;
  /** The next value of `page` to hand out. */
  private at = 0;
  private rowsSeen = 0;

  constructor(read: Read, fileBytes: number, column: ChunkOfColumn) {
    this.read = read;
    this.column = column;
    this.pos = Number(column.meta.dictionary_page_offset || column.meta.data_page_offset);
    this.end = this.pos + Number(column.meta.total_compressed_size);
    if (!Number.isSafeInteger(this.pos) || !Number.isSafeInteger(this.end) || this.end > fileBytes) {
      throw new Error(`column ${column.name} lies past the end of the file (bytes ${this.pos} to ${this.end} of ${fileBytes})`);
    }
  }

  /** Skips `n` values; pages that lie wholly before the first one wanted are not decompressed. */
  async skip(n: number) {
    while (n > 0) {
      const left = this.page.length - this.at;
      if (left === 0) {
        n -= await this.nextPage(n);
        continue;
      }
      const k = Math.min(left, n);
      this.at += k;
      n -= k;
    }
  }

  /** The next `n` values. */
  async take(n: number): Promise<ArrayLike<unknown>> {
    if (this.at === this.page.length) await this.load();
    const left = this.page.length - this.at;
    if (left >= n) {
      const out = this.at === 0 && n === this.page.length ? this.page : sliceOf(this.page, this.at, this.at + n);
      this.at += n;
      return out;
    }
    const out = new Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.at === this.page.length) await this.load();
      const k = Math.min(n - filled, this.page.length - this.at);
      for (let i = 0; i < k; i++) out[filled + i] = this.page[this.at + i];
      filled += k;
      this.at += k;
    }
    return out;
  }

  /** Decodes the next page that has values. */
  private async load() {
    do await this.nextPage(0);
    while (this.at === this.page.length);
  }

  /**
   * Reads the next data page (and a dictionary page before it): skips it
   * unread when it holds no more than `skip` rows and returns their number,
   * else decodes it into `page` and returns 0.
   */
  private async nextPage(skip: number): Promise<number> {
    while (true) {
      if (this.pos >= this.end) {
        throw new Error(`column ${this.column.name} ends after ${this.rowsSeen.toLocaleString('en')} rows, before the row group does`);
      }
      const { header, headerLength } = await this.readHeader(skip > 0);
      const at = this.pos;
      const bodyStart = at + headerLength;
      const size = header.compressed_page_size;
      if (!Number.isSafeInteger(size) || size < 0 || bodyStart + size > this.end) {
        throw new Error(`column ${this.column.name}: the page at byte ${at} claims ${size} bytes, past the end of its column chunk`);
      }
      if (!(header.uncompressed_page_size >= 0 && header.uncompressed_page_size <= MAX_PAGE_BYTES)) {
        throw new Error(`column ${this.column.name}: the page at byte ${at} claims ${header.uncompressed_page_size} bytes uncompressed`);
      }
      this.pos = bodyStart + size;
      const rows = pageRows(header);
      if (header.type !== 'DICTIONARY_PAGE' && rows !== undefined && rows <= skip) {
        this.rowsSeen += rows;
        return rows;
      }
      const bytes = await this.bytesAt(bodyStart, bodyStart + size);
      const body = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const { data } = readPage({ view: body, offset: 0 }, header, this.column.decoder, this.dictionary, undefined, 0);
      if (header.type === 'DICTIONARY_PAGE') {
        if (data) this.dictionary = convert(data, this.column.decoder);
        continue;
      }
      const { decimalScale: scale } = this.column;
      this.page = data && scale !== null ? scaleDecimals(data, scale) : (data ?? EMPTY);
      this.at = 0;
      this.rowsSeen += this.page.length;
      return 0;
    }
  }

  /** The page header at `pos`; when skipping pages, reads no more than it needs. */
  private async readHeader(skipping: boolean): Promise<{ header: PageHeader; headerLength: number }> {
    const room = this.end - this.pos;
    let want = Math.min(HEADER_BYTES, room);
    while (true) {
      const bytes = await this.bytesAt(this.pos, this.pos + want, skipping ? 0 : READ_BYTES);
      const reader = { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 };
      let header: PageHeader | undefined;
      let failure: unknown;
      try {
        header = parquetHeader(reader);
      } catch (err) {
        failure = err;
      }
      if (header && reader.offset <= bytes.length) return { header, headerLength: reader.offset };
      if (want >= room) {
        throw new Error(
          `column ${this.column.name}: no readable page header at byte ${this.pos}${failure ? ` (${(failure as Error).message})` : ''}`,
        );
      }
      want = Math.min(want * 16, room);
    }
  }

  /**
   * Bytes [from, to) of the file: out of the last read when it holds them,
   * else read anew from `from` (`atLeast` bytes, within the chunk). A read
   * is never changed afterwards: decoded values may be views of it.
   */
  private async bytesAt(from: number, to: number, atLeast = READ_BYTES): Promise<Uint8Array> {
    const end = this.windowStart + this.window.length;
    if (from >= this.windowStart && to <= end) return this.window.subarray(from - this.windowStart, to - this.windowStart);
    const want = Math.max(to - from, Math.min(atLeast, this.end - from));
    this.window = await this.read(from, from + want);
    this.windowStart = from;
    if (this.window.length < to - from) {
      throw new Error(`column ${this.column.name}: the file ends at byte ${from + this.window.length}, inside the column chunk`);
    }
    return this.window.subarray(0, to - from);
  }
}

/** Rows in a data page (for a flat column, values are rows); undefined for other pages. */
function pageRows(header: PageHeader): number | undefined {
  if (header.type === 'DATA_PAGE') return header.data_page_header?.num_values;
  if (header.type === 'DATA_PAGE_V2') return header.data_page_header_v2?.num_rows;
  return undefined;
}

function sliceOf(values: ArrayLike<unknown>, start: number, end: number): ArrayLike<unknown> {
  if (ArrayBuffer.isView(values)) return (values as unknown as Float64Array).subarray(start, end);
  return Array.prototype.slice.call(values, start, end);
}
