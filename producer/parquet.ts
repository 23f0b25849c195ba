// Reads a Parquet file one row group at a time, so memory stays bounded by
// the largest row group (two with readAhead) whatever the file size. Accepts
// what common writers produce: pandas/pyarrow (timestamps in ns, us or ms, or
// INT96 as Spark writes them), DuckDB, hyparquet-writer; any codec
// hyparquet-compressors knows.
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead } from 'hyparquet';
import type { AsyncBuffer, FileMetaData, SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { UserError } from '#lib/errors.mjs';

export const COLUMNS = ['id', 'timestamp', 'stock_price', 'sales_trend'] as const;
export type Column = (typeof COLUMNS)[number];

export class ParquetInputError extends UserError {}

/**
 * A row group's columns; Parquet timestamps already in epoch milliseconds
 * (ISO-8601 text stays text: validation parses it).
 */
export interface RowGroup {
  index: number;
  /** Index of its first row in the file. */
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
  const id = byName.get('id')!;
  const isString = id.type === 'BYTE_ARRAY' && (id.converted_type === 'UTF8' || id.logical_type?.type === 'STRING' || !id.converted_type);
  if (!isString && id.type !== 'INT64' && id.type !== 'INT32') {
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
    if (!['DOUBLE', 'FLOAT', 'INT32', 'INT64'].includes(el.type ?? '') || el.converted_type === 'DECIMAL') {
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

/** Reads row groups in order, starting with the one that holds `fromRow`. */
export async function* readRowGroups(source: ParquetSource, path: string, fromRow = 0): AsyncGenerator<RowGroup> {
  for (const [index, group] of source.rowGroups.entries()) {
    if (group.rowStart + group.rows <= fromRow) continue;
    yield await readRowGroup(source, path, index);
  }
}

/**
 * The same items, each one asked for as soon as the one before is handed
 * out: the next row group is read while the caller works on this one (two
 * row groups in memory at a time).
 */
export async function* readAhead<T>(items: AsyncIterator<T>): AsyncGenerator<T> {
  let pending = items.next();
  while (true) {
    const next = await pending;
    if (next.done) return;
    pending = items.next();
    yield next.value;
  }
}

export async function readRowGroup(source: ParquetSource, path: string, index: number): Promise<RowGroup> {
  const { rowStart, rows } = source.rowGroups[index];
  const columns = {} as Record<Column, ArrayLike<unknown>>;
  try {
    await parquetRead({
      file: source.file,
      metadata: source.metadata,
      columns: [...COLUMNS],
      rowStart,
      rowEnd: rowStart + rows,
      compressors,
      parsers,
      onChunk: ({ columnName, columnData, rowStart: chunkStart }) => {
        // One chunk per column per row group in practice; stitch if not.
        const name = columnName as Column;
        const existing = columns[name];
        if (!existing) {
          columns[name] =
            chunkStart === rowStart && columnData.length === rows
              ? columnData
              : placeInto(new Array(rows), columnData, chunkStart - rowStart);
        } else {
          placeInto(existing as unknown[], columnData, chunkStart - rowStart);
        }
      },
    });
  } catch (err) {
    throw new ParquetInputError(`${path}: row group ${index} cannot be read (truncated or corrupt?): ${(err as Error).message}`);
  }
  return { index, rowStart, rows, columns };
}

function placeInto(target: unknown[], data: ArrayLike<unknown>, offset: number) {
  for (let i = 0; i < data.length; i++) target[offset + i] = data[i];
  return target;
}
