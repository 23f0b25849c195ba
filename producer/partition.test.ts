import { describe, expect, it } from 'vitest';
// kafkajs's reference implementation (CommonJS, not part of its public API).
import kafkajsMurmur2 from 'kafkajs/src/producer/partitioners/default/murmur2.js';
import { murmur2, partitionFor } from './partition.js';

describe('murmur2', () => {
  it('matches kafkajs (and so the Java client) on ids and odd-length keys', () => {
    const keys = [...Array.from({ length: 20_000 }, (_, i) => String(i + 1)), '', 'a', 'ab', 'abc', 'héllo wörld', 'synthetic_data'];
    for (const key of keys) {
      expect(murmur2(Buffer.from(key)), key).toBe(kafkajsMurmur2(Buffer.from(key)));
    }
  });

  it('spreads ids evenly over partitions', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 1; i <= 40_000; i++) counts[partitionFor(Buffer.from(String(i)), 4)]++;
    for (const n of counts) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});
