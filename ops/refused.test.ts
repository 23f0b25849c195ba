import { describe, expect, it } from 'vitest';
import { notLanded, recordKey, refusal, refusedRow, rootCause, sameRefusal } from './refused.mjs';
import { mayQuarantine } from './watchdog.mjs';

// Shaped as the Debezium 3.6 sink's task trace reads (taken from a real one, shortened).
const COLS = '("id","timestamp","stock_price","sales_trend","kafka_timestamp")';
const ROW = (id: number, ts = '2024-06-01 00:00:00') =>
  `(('${id}'::int8),('${ts}'::timestamp),('1.0'::double precision),('2.0'::double precision),('2026-11-29 22:51:15.825'::timestamp))`;
const UPSERT = ' ON CONFLICT ("id") DO UPDATE SET "timestamp"=EXCLUDED."timestamp"';
const trace = (
  values: string,
  error = 'ERROR: new row for relation "synthetic_data" violates check constraint "synthetic_data_timestamp_finite"',
  cols = COLS,
) =>
  [
    'org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask due to unrecoverable exception.',
    '\tat org.apache.kafka.connect.runtime.WorkerSinkTask.deliverMessages(WorkerSinkTask.java:658)',
    'Caused by: org.apache.kafka.connect.errors.ConnectException: JDBC sink connector failure',
    `Caused by: java.sql.BatchUpdateException: Batch entry 0 INSERT INTO "public"."synthetic_data" ${cols} VALUES ${values}${UPSERT} was aborted: ${error}  Call getNextException to see other errors in the batch.`,
    `Caused by: org.postgresql.util.PSQLException: ${error}`,
    '  Detail: Failing row contains (992010, -infinity, 1, 2, 2026-11-29 22:51:15.825+00, 2026-11-29 22:51:15.9+00).',
    '\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2733)',
  ].join('\n');

describe('a refusal of PostgreSQL in a sink task trace', () => {
  it('is the server error line; a lost connection or a converter error is none', () => {
    expect(refusal(trace(ROW(1)))).toBe(
      'ERROR: new row for relation "synthetic_data" violates check constraint "synthetic_data_timestamp_finite"',
    );
    expect(refusal('Caused by: org.postgresql.util.PSQLException: An I/O error occurred while sending to the backend.')).toBeNull();
    expect(refusal('Caused by: org.apache.kafka.connect.errors.DataException: Failed to deserialize data')).toBeNull();
  });

  it('has a root cause without package names, for status and the log', () => {
    expect(rootCause(trace(ROW(1)))).toBe(
      'PSQLException: ERROR: new row for relation "synthetic_data" violates check constraint "synthetic_data_timestamp_finite"',
    );
    expect(rootCause('java.lang.IllegalStateException: boom\n\tat x.y(Z.java:1)')).toBe('IllegalStateException: boom');
    expect(rootCause('')).toBe('no trace');
  });

  it('names the row of a single-row statement, column by column', () => {
    expect(refusedRow(trace(ROW(992010, '-infinity')))).toEqual({
      id: '992010',
      timestamp: '-infinity',
      stock_price: '1.0',
      sales_trend: '2.0',
      kafka_timestamp: '2026-11-29 22:51:15.825',
    });
  });

  it('names no row while the statement still holds several records', () => {
    expect(refusedRow(trace(`${ROW(1)},${ROW(2)}`))).toBeNull();
    expect(refusedRow('Caused by: org.postgresql.util.PSQLException: ERROR: permission denied for table synthetic_data')).toBeNull();
  });

  it('reads quoted quotes and NULLs', () => {
    const values = `(('7'::int8),('it''s'::text),(NULL),('2.0'::double precision),('2026-01-02 03:04:05.6'::timestamp))`;
    expect(refusedRow(trace(values))).toEqual({
      id: '7',
      timestamp: "it's",
      stock_price: null,
      sales_trend: '2.0',
      kafka_timestamp: '2026-01-02 03:04:05.6',
    });
  });

  it('gives the id and the exact partition and offset the sink wrote with the row', () => {
    const cols = '("id","timestamp","stock_price","sales_trend","kafka_timestamp","kafka_partition","kafka_offset")';
    const values =
      "(('992010'::int8),('2024-06-01 00:00:00'::timestamp),('1.0'::double precision),('2.0'::double precision),('2026-11-29 22:51:15.825'::timestamp),('3'::int4),('120034'::int8))";
    const row = refusedRow(trace(values, undefined, cols));
    expect(row).not.toBeNull();
    expect(recordKey(row!)).toEqual({ id: '992010', partition: 3, offset: 120034 });
    // A row from a connector config without them: no coordinates, never a guess.
    expect(recordKey({ id: '5', kafka_timestamp: '2026-11-29 22:51:15.825' })).toEqual({ id: '5', partition: null, offset: null });
    expect(recordKey({ id: '5', kafka_partition: '-1', kafka_offset: 'x' })).toEqual({ id: '5', partition: null, offset: null });
  });
});

describe('before the sink moves past a refused record', () => {
  const rows = new Map([
    ['1', { partition: 0, offset: 10 }],
    ['2', { partition: 0, offset: 5 }],
    ['3', { partition: 1, offset: 99 }],
    ['4', { partition: 0, offset: null }],
  ]);
  it('finds every record before it that has not landed: no row, an older version, another partition, no offset recorded', () => {
    const before = [
      { offset: 10, id: '1' }, // landed: this very version
      { offset: 8, id: '1' }, // an older version, overwritten by offset 10
      { offset: 11, id: '2' }, // the row is from offset 5: this one did not land
      { offset: 12, id: '3' }, // a row of another partition's record
      { offset: 13, id: '4' }, // written without coordinates: not proved
      { offset: 14, id: '9' }, // no row at all
      { offset: 15, id: null }, // undecodable, and not dead-lettered
    ];
    expect(notLanded(before, rows, 0, new Set()).map((r) => r.offset)).toEqual([11, 12, 13, 14, 15]);
    // What Connect dead-lettered is handled too.
    expect(notLanded(before, rows, 0, new Set([14, 15])).map((r) => r.offset)).toEqual([11, 12, 13]);
  });
  it('counts the same refusal only, whatever its numbers', () => {
    const a = 'ERROR: new row for relation "synthetic_data" violates check constraint "synthetic_data_stock_price_valid"';
    expect(sameRefusal(a, a)).toBe(true);
    expect(sameRefusal('ERROR: value 1e400 is out of range', 'ERROR: value 2e500 is out of range')).toBe(true);
    expect(sameRefusal(a, 'ERROR: deadlock detected')).toBe(false);
    expect(sameRefusal(a, 'ERROR: canceling statement due to statement timeout')).toBe(false);
  });
});

describe('the quarantine limit', () => {
  const NOW = Date.parse('2026-01-01T12:00:00Z');
  const moved = (n: number, minutesAgo: number) =>
    Array.from({ length: n }, () => ({
      at: new Date(NOW - minutesAgo * 60_000).toISOString(),
      partition: 0,
      offset: 0,
      id: '1',
      reason: 'x',
    }));
  it('lets up to 10 refused records move in 10 minutes, then none until the window passes', () => {
    const record = { restarts: [], lastError: '', failingSince: null };
    expect(mayQuarantine(record, NOW)).toBe(true);
    expect(mayQuarantine({ ...record, quarantined: moved(9, 1) }, NOW)).toBe(true);
    expect(mayQuarantine({ ...record, quarantined: moved(10, 1) }, NOW)).toBe(false);
    expect(mayQuarantine({ ...record, quarantined: moved(10, 11) }, NOW)).toBe(true);
  });
});
