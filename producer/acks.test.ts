import { describe, expect, it } from 'vitest';
import { Acks } from './acks.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** An Acks that records, at each acknowledgement, what a checkpoint would see. */
function tracker(startRow = 0, now = () => 0) {
  const seen: { nextRow: number; sent: number; rejected: number }[] = [];
  const acks: Acks = new Acks(startRow, () => seen.push({ nextRow: acks.nextRow, sent: acks.sent, rejected: acks.rejected }), now);
  return { acks, seen };
}

describe('Acks', () => {
  it('starts at the start row with nothing acknowledged', () => {
    const { acks } = tracker(4096);
    expect({ nextRow: acks.nextRow, sent: acks.sent, rejected: acks.rejected, inFlight: acks.inFlight }).toEqual({
      nextRow: 4096,
      sent: 0,
      rejected: 0,
      inFlight: 0,
    });
  });

  it('settles the oldest chunks down to the window, each one reported once, counts updated', async () => {
    const { acks, seen } = tracker(100);
    acks.push({ done: Promise.resolve(), nextRow: 200, sent: 90, rejected: 10 });
    acks.push({ done: Promise.resolve(), nextRow: 300, sent: 100, rejected: 0 });
    acks.push({ done: Promise.resolve(), nextRow: 400, sent: 95, rejected: 5 });
    await acks.settle(1);
    expect(acks.inFlight).toBe(1);
    expect(seen).toEqual([
      { nextRow: 200, sent: 90, rejected: 10 },
      { nextRow: 300, sent: 190, rejected: 10 },
    ]);
    await acks.settle(0);
    expect(acks.inFlight).toBe(0);
    expect(seen.at(-1)).toEqual({ nextRow: 400, sent: 285, rejected: 15 });
  });

  it('does not move past a chunk Kafka has not acknowledged, even when later ones are', async () => {
    const { acks, seen } = tracker(0);
    const first = deferred();
    acks.push({ done: first.promise, nextRow: 10, sent: 10, rejected: 0 });
    acks.push({ done: Promise.resolve(), nextRow: 20, sent: 10, rejected: 0 });
    const settling = acks.settle(0);
    await tick();
    expect(acks.nextRow).toBe(0);
    expect(seen).toEqual([]);
    first.resolve();
    await settling;
    expect(seen.map((s) => s.nextRow)).toEqual([10, 20]);
  });

  it('throws the failure of a chunk and keeps the counts of the chunks before it', async () => {
    const { acks, seen } = tracker(0);
    acks.push({ done: Promise.resolve(), nextRow: 10, sent: 9, rejected: 1 });
    acks.push({ done: Promise.reject(new Error('broker gone')), nextRow: 20, sent: 10, rejected: 0 });
    acks.push({ done: Promise.resolve(), nextRow: 30, sent: 10, rejected: 0 });
    await expect(acks.settle(0)).rejects.toThrow('broker gone');
    expect({ nextRow: acks.nextRow, sent: acks.sent, rejected: acks.rejected }).toEqual({ nextRow: 10, sent: 9, rejected: 1 });
    expect(seen).toHaveLength(1);
  });

  it('lets a failing chunk wait in the window without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { acks } = tracker(0);
      acks.push({ done: new Promise(() => {}), nextRow: 10, sent: 10, rejected: 0 });
      acks.push({ done: Promise.reject(new Error('later chunk failed')), nextRow: 20, sent: 10, rejected: 0 });
      await tick();
      await tick();
      expect(unhandled).toEqual([]);
      expect(acks.inFlight).toBe(2);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('says how long Kafka has been silent while chunks wait', async () => {
    let clock = 1000;
    const { acks } = tracker(0, () => clock);
    expect(acks.silentForMs(50_000)).toBe(0);
    acks.push({ done: Promise.resolve(), nextRow: 10, sent: 10, rejected: 0 });
    acks.push({ done: new Promise(() => {}), nextRow: 20, sent: 10, rejected: 0 });
    expect(acks.silentForMs(31_000)).toBe(30_000);
    clock = 40_000;
    await acks.settle(1);
    expect(acks.lastAckAt).toBe(40_000);
    expect(acks.silentForMs(45_000)).toBe(5000);
  });
});
