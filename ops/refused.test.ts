import { describe, expect, it } from 'vitest';
import { recordKey, refusal, refusedRow, rootCause } from './refused.mjs';
import { mayQuarantine } from './watchdog.mjs';

// Shaped as the Debezium 3.6 sink's task trace reads (taken from a real one, shortened).
const COLS = '("id","timestamp","stock_price","sales_trend","kafka_timestamp")';
const ROW = (id: number, ts = '2024-06-01 00:00:00') =>
  `(('${id}'::int8),('${ts}'::timestamp),('1.0'::double precision),('2.0'::double precision),('2026-11-29 22:51:15.825'::timestamp))`;
const UPSERT = ' ON CONFLICT ("id") DO UPDATE SET "timestamp"=EXCLUDED."timestamp"';
const trace = (
  values: string,
  error = 'ERROR: new row for relation "synthetic_data" violates check constraint "synthetic_data_timestamp_finite"',
) =>
  [
    'org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask due to unrecoverable exception.',
    '\tat org.apache.kafka.connect.runtime.WorkerSinkTask.deliverMessages(WorkerSinkTask.java:658)',
    'Caused by: org.apache.kafka.connect.errors.ConnectException: JDBC sink connector failure',
    `Caused by: java.sql.BatchUpdateException: Batch entry 0 INSERT INTO "public"."synthetic_data" ${COLS} VALUES ${values}${UPSERT} was aborted: ${error}  Call getNextException to see other errors in the batch.`,
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

  it('gives the id and the Kafka timestamp (UTC, ms) that find the record', () => {
    expect(recordKey({ id: '992010', kafka_timestamp: '2026-11-29 22:51:15.825' })).toEqual({
      id: '992010',
      timestampMs: Date.UTC(2026, 10, 29, 22, 51, 15, 825),
    });
    expect(recordKey({ id: '5' })).toEqual({ id: '5', timestampMs: null });
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
