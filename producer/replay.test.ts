import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { fromDeadLetter, fromRejected } from './replay.js';

const message = (value: string | Buffer, headers: Record<string, string> = {}, key = '7') =>
  ({
    key: Buffer.from(key),
    value: Buffer.isBuffer(value) ? value : Buffer.from(value),
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
    offset: '0',
    timestamp: '0',
    attributes: 0,
  }) as KafkaMessage;

describe('fromDeadLetter', () => {
  it('gives back the bytes Connect could not take, to their partition, without its error headers', () => {
    const out = fromDeadLetter(
      message(Buffer.from([0, 0, 0, 0, 1, 2]), {
        '__connect.errors.topic': 'synthetic_data',
        '__connect.errors.partition': '3',
        '__connect.errors.exception.message': 'registry down',
        trace: 'kept',
      }),
      'synthetic_data',
    );
    expect(out).toEqual({
      message: { key: Buffer.from('7'), value: Buffer.from([0, 0, 0, 0, 1, 2]), headers: { trace: Buffer.from('kept') } },
      partition: 3,
    });
  });
  it('leaves alone a dead letter of another topic', () => {
    expect(fromDeadLetter(message('x', { '__connect.errors.topic': 'other' }), 'synthetic_data')).toEqual({
      skip: 'from topic other, not synthetic_data',
    });
  });
  it('lets the partitioner choose when the partition header is missing', () => {
    expect(fromDeadLetter(message('x'), 'synthetic_data')).toMatchObject({ partition: -1 });
  });
});

describe('fromRejected', () => {
  const encode = (record: object) => Buffer.from(JSON.stringify(record));
  const rejected = (row: object) => message(JSON.stringify({ reason: 'was bad', row }));
  it('sends a row that passes validation now, keyed and partitioned by id', () => {
    const out = fromRejected(rejected({ id: '42', timestamp: '2024-01-01T00:00:00.000Z', stock_price: 1.5, sales_trend: 2 }), 4, encode);
    expect(out).toMatchObject({ message: { key: Buffer.from('42') } });
    if (!('message' in out)) throw new Error('expected a message');
    expect(JSON.parse(String(out.message.value))).toEqual({ id: 42, timestamp: Date.UTC(2024, 0, 1), stock_price: 1.5, sales_trend: 2 });
    expect(out.partition).toBeGreaterThanOrEqual(0);
    expect(out.partition).toBeLessThan(4);
  });
  it('keeps out a row that still fails, with the reason', () => {
    expect(fromRejected(rejected({ id: '42', timestamp: '2024-01-01T00:00:00Z', stock_price: -1, sales_trend: 2 }), 4, encode)).toEqual({
      invalid: 'stock_price -1 is negative',
    });
    expect(fromRejected(message('not json'), 4, encode)).toEqual({ invalid: 'not a rejected-row message (no JSON row)' });
  });
});
