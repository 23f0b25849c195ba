import { describe, expect, it } from 'vitest';
import { type Facts, problems } from './health.mjs';
import { age, dlqReason, rejectedReason } from './quarantine.mjs';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const healthy = (): Facts => ({
  services: [{ name: 'kafka', state: 'ready' }],
  connectors: [{ name: 'sink', state: 'running', detail: '' }],
  sink: { lag: 0, moved: true },
  dlq: { pending: 0, oldestAt: null, reasons: [] },
  restarts: {},
  tables: null,
});

describe('status problems', () => {
  it('finds none in a healthy pipeline, even with lag that moves', () => {
    expect(problems(healthy(), NOW)).toEqual([]);
    expect(problems({ ...healthy(), sink: { lag: 5000, moved: true } }, NOW)).toEqual([]);
  });
  it('calls lag that does not move stuck', () => {
    expect(problems({ ...healthy(), sink: { lag: 20, moved: false } }, NOW)).toEqual([
      expect.stringMatching(/^the sink is stuck: 20 records behind and not moving/),
    ]);
  });
  it('names dead letters with their age, reasons and the fix', () => {
    const f = {
      ...healthy(),
      dlq: {
        pending: 3,
        oldestAt: new Date(NOW - 90 * 60_000),
        reasons: [['VALUE_CONVERTER: RestClientException', 3]] as [string, number][],
      },
    };
    expect(problems(f, NOW)).toEqual([
      '3 records in the dead letter queue not replayed, oldest 90 min old (3 x VALUE_CONVERTER: RestClientException): fix the cause, then `npm run dlq:replay`',
    ]);
  });
  it('names one dead letter in the singular', () => {
    const f = {
      ...healthy(),
      dlq: { pending: 1, oldestAt: null, reasons: [['TASK_PUT: PSQLException: ERROR: x', 1]] as [string, number][] },
    };
    expect(problems(f, NOW)).toEqual([
      '1 record in the dead letter queue not replayed (1 x TASK_PUT: PSQLException: ERROR: x): fix the cause, then `npm run dlq:replay`',
    ]);
  });
  it('names rows the producer rejected, with their reasons and the three ways out', () => {
    const f = {
      ...healthy(),
      rejected: {
        pending: 2,
        oldestAt: new Date(NOW - 3 * 3600_000),
        reasons: [['stock_price -1 is negative', 2]] as [string, number][],
      },
    };
    expect(problems(f, NOW)).toEqual([
      '2 rows the producer rejected not replayed, oldest 3 h old (2 x stock_price -1 is negative): correct them at the source and produce again, or `npm run dlq:replay -- --rejected` once they are valid, or `-- --rejected --drop` to let them go',
    ]);
    expect(problems({ ...f, rejected: { ...f.rejected, pending: 0 } }, NOW)).toEqual([]);
  });
  it('tells a connector that keeps failing from one that failed once', () => {
    const at = (min: number) => new Date(NOW - min * 60_000).toISOString();
    const failing = { restarts: [at(9), at(6), at(2)], lastError: 'PSQLException: timestamp out of range', failingSince: at(9) };
    const f = {
      ...healthy(),
      connectors: [{ name: 'sink', state: 'failed' as const, detail: 'tasks 0:FAILED' }],
      restarts: { sink: failing },
    };
    expect(problems(f, NOW)[0]).toMatch(
      /^connector sink keeps failing \(3 restarts, failing since .*\): PSQLException: timestamp out of range/,
    );
    const once = { ...f, restarts: { sink: { ...failing, restarts: [at(2)] } } };
    expect(problems(once, NOW)).toEqual(['connector sink is not running (tasks 0:FAILED)']);
    const old = { ...f, restarts: { sink: { ...failing, restarts: [at(50), at(40), at(30)] } } };
    expect(problems(old, NOW)).toEqual(['connector sink is not running (tasks 0:FAILED)']);
  });
  it('sends a missing connector and a down service to the command that fixes them', () => {
    const f = {
      ...healthy(),
      services: [{ name: 'kafka', state: 'down' }],
      connectors: [{ name: 'sink', state: 'missing' as const, detail: '' }],
    };
    expect(problems(f, NOW)).toEqual([
      'kafka is down: `npm start` brings everything up',
      'connector sink is not created: run `npm run connectors:apply`',
    ]);
  });
});

describe('quarantine reasons', () => {
  const msg = (headers: Record<string, string>) =>
    ({ headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])) }) as never;
  it("read Connect's error headers, shortest class name", () => {
    expect(
      dlqReason(
        msg({
          '__connect.errors.stage': 'VALUE_CONVERTER',
          '__connect.errors.exception.class.name': 'org.apache.kafka.connect.errors.DataException',
          '__connect.errors.exception.message': 'Unknown magic byte!',
        }),
      ),
    ).toBe('VALUE_CONVERTER: DataException: Unknown magic byte!');
    expect(dlqReason(msg({}))).toBe('no error headers');
    expect(dlqReason(msg({ '__connect.errors.exception.message': 'x'.repeat(500) }))).toHaveLength(160);
  });
  it("read the producer's reason header", () => {
    expect(rejectedReason(msg({ reason: 'stock_price -3 is negative' }))).toBe('stock_price -3 is negative');
  });
  it('print ages a person reads at a glance', () => {
    expect([age(5_000), age(600_000), age(3 * 3_600_000), age(5 * 86_400_000)]).toEqual(['5 s', '10 min', '3 h', '5 d']);
  });
});
