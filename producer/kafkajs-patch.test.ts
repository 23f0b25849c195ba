// Our patch of kafkajs's record encoding (patches/kafkajs+2.2.4.patch) writes
// a batch's records into one encoder and small 64-bit varints without Long
// arithmetic: the bytes must be the ones kafkajs's own paths write.
import Encoder from 'kafkajs/src/protocol/encoder.js';
import Record from 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
import { RecordBatch } from 'kafkajs/src/protocol/recordBatch/v0/index.js';
import Long from 'kafkajs/src/utils/long.js';
import { describe, expect, it } from 'vitest';

describe('the kafkajs patch', () => {
  it('writes a 64-bit varint of a small number as the Long path does', () => {
    for (const n of [0, 1, -1, 63, -64, 64, 8191, -8192, 1_000_000, -(2 ** 30), 2 ** 30 - 1, 2 ** 30, 2 ** 40, -(2 ** 40)]) {
      const fast = new Encoder().writeVarLong(n).buffer;
      const long = new Encoder().writeVarLong(Long.fromNumber(n)).buffer;
      expect(fast, String(n)).toEqual(long);
      expect(Encoder.sizeOfVarLong(n), String(n)).toBe(long.length);
    }
  });

  it('writes a batch of records into one encoder as kafkajs writes them one by one', async () => {
    const messages = Array.from({ length: 300 }, (_, i) => ({
      key: i % 11 === 0 ? null : String(i * 7919),
      value: i % 13 === 0 ? null : Buffer.from(`${'v'.repeat(i % 50)}${i}`),
      headers: i % 5 === 0 ? { a: 'x', b: ['1', '2'] } : undefined,
      timestampDelta: i % 7 === 0 ? 2 ** 40 + i : i * 60_000,
    }));
    for (const compression of [0, 1]) {
      const batch = {
        compression,
        firstTimestamp: 1_700_000_000_000,
        maxTimestamp: 1_700_000_000_000,
        lastOffsetDelta: messages.length - 1,
      };
      const oneByOne = await RecordBatch({
        ...batch,
        records: messages.map((m, i) => Record({ ...m, offsetDelta: i, headers: m.headers ?? {} })),
      });
      const encoder = new Encoder(64);
      for (const [i, m] of messages.entries()) Record.writeRecord(encoder, { ...m, offsetDelta: i });
      const together = await RecordBatch({ ...batch, encodedRecords: { count: messages.length, encoder } });
      expect(together.buffer.equals(oneByOne.buffer), `compression ${compression}`).toBe(true);
    }
  });
});
