// From rows to messages, one chunk at a time: which rows a chunk holds, and
// what each row becomes (validated, keyed by id, partitioned and encoded, or
// a rejected-topic message saying why). No Kafka and no I/O; the only clock
// is the present, read by validation (a row from the future) and by a
// rejection (its time). shapeChunk's loop is the producer's hot path: per row
// it allocates the row, its verdict and record, key and value, the message.
import type { Message } from 'kafkajs';
import type { SyntheticRecord } from './avro.js';
import { COLUMNS } from './parquet.js';
import type { RowGroup } from './parquet.js';
import { partitionFor } from './partition.js';
import { parseId, validateRow } from './validate.js';
import type { RawRow } from './validate.js';

/**
 * The chunks of a row group, as [start, end) row indexes in the file: the
 * group's rows from `startRow` (where the run starts) up to `lastRow` (where it
 * ends), `chunkRows` at a time. Nothing when the group lies outside.
 */
export function* chunkRanges(
  groupStart: number,
  groupRows: number,
  startRow: number,
  lastRow: number,
  chunkRows: number,
): Generator<[start: number, end: number]> {
  const from = Math.max(groupStart, startRow);
  const to = Math.min(groupStart + groupRows, lastRow);
  for (let start = from; start < to; start += chunkRows) yield [start, Math.min(start + chunkRows, to)];
}

/** Row `i` of a row group (an index within the group), as the reader gave it. */
export function rowAt(group: RowGroup, i: number): RawRow {
  const c = group.columns;
  return { id: c.id[i], timestamp: c.timestamp[i], stock_price: c.stock_price[i], sales_trend: c.sales_trend[i] };
}

/**
 * Most bytes a raw value takes in a rejection's JSON: with four columns the
 * message stays far below Kafka's message.max.bytes (about 1 MB) whatever the
 * file holds.
 */
export const MAX_VALUE_BYTES = 64 * 1024;

const jsonBytes = (text: string) => Buffer.byteLength(JSON.stringify(text));

/**
 * Text cut to at most `maxBytes` bytes of JSON, ending with how many
 * characters were cut; shorter text as it is. Never splits a surrogate pair.
 */
export function cutForJson(text: string, maxBytes = MAX_VALUE_BYTES): string {
  // A character takes at most 6 bytes in JSON (\u0001): short text fits unmeasured.
  if (text.length * 6 + 2 <= maxBytes || jsonBytes(text) <= maxBytes) return text;
  const note = (cut: number) => `… [${cut.toLocaleString('en')} more characters cut]`;
  // JSON bytes the kept prefix may take, quotes included (the note's longest).
  const room = maxBytes - jsonBytes(note(text.length)) + 2;
  // The longest prefix that fits: one of (room - 2) / 6 characters does.
  let lo = Math.max(0, Math.floor((room - 2) / 6));
  let hi = Math.min(text.length, room);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (jsonBytes(text.slice(0, mid)) <= room) lo = mid;
    else hi = mid - 1;
  }
  let keep = lo;
  const last = text.charCodeAt(keep - 1);
  if (last >= 0xd800 && last <= 0xdbff) keep--;
  return `${text.slice(0, keep)}${note(text.length - keep)}`;
}

/**
 * The rejected topic's message: the raw row as JSON (each value cut to
 * MAX_VALUE_BYTES), with why and where from. The reason is short (validation
 * never quotes a long value).
 */
export function rejection(file: string, row: number, raw: RawRow, reason: string): Message {
  const rowJson = Object.fromEntries(
    COLUMNS.map((name) => {
      const value = jsonSafe(raw[name]);
      return [name, typeof value === 'string' ? cutForJson(value) : value];
    }),
  );
  return {
    key: String(row),
    value: JSON.stringify({ reason, file, row_index: row, row: rowJson, rejected_at: new Date().toISOString() }),
    headers: { reason },
  };
}

/** A raw value JSON can hold: bigints and non-finite numbers as text, Dates as ISO text, undefined as null. */
export function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  return value ?? null;
}

export interface ShapeOptions {
  /**
   * --from-id: the run selects the rows whose id is this or more. The others
   * (a smaller id, or none that reads as one) are skipped: counted, neither
   * sent nor rejected; the run without --from-id sends or rejects them.
   */
  fromId?: number;
  partitions: number;
  /** A record to its message value (Avro in the Confluent framing). */
  encode: (record: SyntheticRecord) => Buffer;
  /** The file, as the rejected messages name it. */
  file: string;
}

export interface ShapedChunk {
  /** Messages to send, by partition. */
  perLane: Message[][];
  /** Messages for the rejected topic. */
  rejected: Message[];
  /** Rows read: end - start. */
  read: number;
  /** Valid rows, in perLane. */
  sent: number;
  /** Rows outside the --from-id selection. */
  skipped: number;
  /** Data timestamps of the first and last row sent; NaN when none is. */
  firstTs: number;
  lastTs: number;
}

/** Rows [start, end) of the file, which `group` holds, as messages. */
export function shapeChunk(group: RowGroup, start: number, end: number, opts: ShapeOptions): ShapedChunk {
  const { fromId, partitions, encode, file } = opts;
  const perLane: Message[][] = Array.from({ length: partitions }, () => []);
  const rejected: Message[] = [];
  let sent = 0;
  let skipped = 0;
  let firstTs = NaN;
  let lastTs = NaN;
  for (let row = start; row < end; row++) {
    const raw = rowAt(group, row - group.rowStart);
    if (fromId !== undefined) {
      const id = parseId(raw.id);
      if (typeof id === 'string' || id < fromId) {
        skipped++;
        continue;
      }
    }
    const verdict = validateRow(raw);
    if (!verdict.ok) {
      rejected.push(rejection(file, row, raw, verdict.reason));
      continue;
    }
    const { record } = verdict;
    const key = Buffer.from(String(record.id), 'latin1');
    const partition = partitionFor(key, partitions);
    perLane[partition].push({ key, value: encode(record), partition });
    if (sent === 0) firstTs = record.timestamp;
    lastTs = record.timestamp;
    sent++;
  }
  return { perLane, rejected, read: end - start, sent, skipped, firstTs, lastTs };
}
