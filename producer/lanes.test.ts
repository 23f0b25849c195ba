import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { Lanes, MAX_REJECTED_REQUEST_BYTES } from './lanes.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

const msg = (partition: number, n: number): Message => ({ key: `${partition}:${n}`, value: 'v', partition });
const lane = (partition: number, count: number, from = 0) => Array.from({ length: count }, (_, i) => msg(partition, from + i));
const keys = (messages: Message[]) => messages.map((m) => m.key);

/** Sends that wait until released, one by one, in the order they were made. */
function heldSends() {
  const calls: { topic: string; keys: unknown[]; release: () => void; fail: (err: Error) => void }[] = [];
  const sender = (topic: string) => (messages: Message[]) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ topic, keys: keys(messages), release: resolve, fail: reject });
    });
  return { calls, send: sender('topic'), sendRejected: sender('rejected') };
}

describe('Lanes', () => {
  it("sends a partition's messages in order, at most batchMessages a request", async () => {
    const sent: unknown[][] = [];
    const lanes = new Lanes(
      2,
      2,
      async (messages) => sent.push(keys(messages)),
      async () => {},
    );
    await lanes.enqueue([lane(0, 5), []], []);
    expect(sent).toEqual([['0:0', '0:1'], ['0:2', '0:3'], ['0:4']]);
  });

  it("sends the partitions at the same time, and a partition's next chunk only after its previous one", async () => {
    const { calls, send, sendRejected } = heldSends();
    const lanes = new Lanes(2, 10, send, sendRejected);
    const first = lanes.enqueue([lane(0, 2), lane(1, 2)], []);
    const second = lanes.enqueue([lane(0, 2, 2), lane(1, 2, 2)], []);
    await tick();
    // Both partitions' first requests are out; nothing of the second chunk is.
    expect(calls.map((c) => c.keys)).toEqual([
      ['0:0', '0:1'],
      ['1:0', '1:1'],
    ]);
    calls[1].release();
    await tick();
    // Partition 1 moves on to the second chunk while partition 0 still waits.
    expect(calls.map((c) => c.keys)).toEqual([
      ['0:0', '0:1'],
      ['1:0', '1:1'],
      ['1:2', '1:3'],
    ]);
    calls[0].release();
    calls[2].release();
    await first;
    await tick();
    expect(calls.map((c) => c.keys).at(-1)).toEqual(['0:2', '0:3']);
    calls[3].release();
    await second;
  });

  it("sends a chunk's rejected rows as one request of their own lane, and nothing for empty lanes", async () => {
    const { calls, send, sendRejected } = heldSends();
    const lanes = new Lanes(3, 10, send, sendRejected);
    const rejected = [
      { key: '7', value: '{}' },
      { key: '9', value: '{}' },
    ];
    const done = lanes.enqueue([[], lane(1, 1), []], rejected);
    await tick();
    expect(calls.map((c) => [c.topic, c.keys])).toEqual([
      ['topic', ['1:0']],
      ['rejected', ['7', '9']],
    ]);
    for (const c of calls) c.release();
    await expect(done).resolves.toHaveLength(2);
  });

  it('settles a chunk with nothing to send at once', async () => {
    const { calls, send, sendRejected } = heldSends();
    const lanes = new Lanes(2, 10, send, sendRejected);
    await expect(lanes.enqueue([[], []], [])).resolves.toEqual([]);
    expect(calls).toEqual([]);
  });

  it('fails a chunk when one of its sends fails, and every later chunk on that lane', async () => {
    const lanes = new Lanes(
      2,
      10,
      async (messages) => {
        if (messages[0].partition === 0) throw new Error('partition 0 is gone');
      },
      async () => {},
    );
    await expect(lanes.enqueue([lane(0, 1), lane(1, 1)], [])).rejects.toThrow('partition 0 is gone');
    await expect(lanes.enqueue([lane(0, 1), []], [])).rejects.toThrow('partition 0 is gone');
    await expect(lanes.enqueue([[], lane(1, 1)], [])).resolves.toHaveLength(1);
  });

  it('sends rejected messages in requests Kafka takes: under MAX_REJECTED_REQUEST_BYTES each, in order', async () => {
    const requests: Message[][] = [];
    const lanes = new Lanes(
      1,
      1000,
      async () => {},
      async (messages) => {
        requests.push(messages);
      },
    );
    const big = (n: number): Message => ({ key: String(n), value: 'v'.repeat(200 * 1024), headers: { reason: 'why' } });
    const small = (n: number): Message => ({ key: String(n), value: 'v' });
    const rejected = [big(0), big(1), small(2), big(3), small(4), small(5)];
    await lanes.enqueue([[]], rejected);
    expect(requests.flat().map((m) => m.key)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(requests.length).toBeGreaterThan(1);
    for (const request of requests) {
      const size = request.reduce((sum, m) => sum + Buffer.byteLength(m.value as string), 0);
      expect(size).toBeLessThanOrEqual(MAX_REJECTED_REQUEST_BYTES);
    }
    expect(MAX_REJECTED_REQUEST_BYTES).toBeLessThan(1_000_000);
  });
});
