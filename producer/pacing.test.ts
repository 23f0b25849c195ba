import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Pacer, chunkRowsFor, medianGapMs, sleep, waitMs } from './pacing.js';

describe('pacing', () => {
  it('sends as fast as it can by default', () => {
    expect(waitMs({ mode: 'max' }, 1e6, 0, 0, 0)).toBe(0);
    expect(chunkRowsFor({ mode: 'max' }, 4096)).toBe(4096);
  });
  it('holds a fixed rate', () => {
    // 2,000 rows sent at 1,000 rows/s are due at 2 s; 1.5 s have passed.
    expect(waitMs({ mode: 'rate', rowsPerSecond: 1000 }, 2000, 1500, 0, 0)).toBe(500);
    expect(waitMs({ mode: 'rate', rowsPerSecond: 1000 }, 2000, 2500, 0, 0)).toBe(0);
    expect(chunkRowsFor({ mode: 'rate', rowsPerSecond: 2000 }, 4096)).toBe(100);
  });
  it('replays data time at a speed factor', () => {
    // A row 10 data-minutes after the first, at 60x, is due 10 s after the start.
    expect(waitMs({ mode: 'speed', factor: 60 }, 0, 4000, 600_000, 0)).toBe(6000);
    expect(chunkRowsFor({ mode: 'speed', factor: 60 }, 4096, 60_000)).toBe(1);
    expect(chunkRowsFor({ mode: 'speed', factor: 60_000 }, 4096, 60_000)).toBe(50);
  });
});

describe('medianGapMs', () => {
  it('is the typical gap between timestamps, whatever their order or repeats', () => {
    expect(medianGapMs([0, 60_000, 120_000, 180_000])).toBe(60_000);
    // Gaps 1000, 3000, 2000; the backward step and the repeat are not gaps.
    expect(medianGapMs([0, 1000, 4000, 6000, 5000, 5000])).toBe(2000);
  });
  it('reads only the first 101 timestamps', () => {
    const ts = [...Array.from({ length: 101 }, (_, i) => i * 1000), ...Array.from({ length: 500 }, (_, i) => 200_000 + i * 10)];
    expect(medianGapMs(ts)).toBe(1000);
  });
  it('is a minute without gaps to go by (too few rows, or text timestamps)', () => {
    expect(medianGapMs([])).toBe(60_000);
    expect(medianGapMs([5])).toBe(60_000);
    expect(medianGapMs(['2024-01-01T00:00:00Z', '2024-01-01T00:00:01Z'])).toBe(60_000);
  });
  it('takes bigint timestamps', () => {
    expect(medianGapMs([0n, 500n, 1000n])).toBe(500);
  });
});

describe('Pacer', () => {
  const chunk = (sent: number, firstTs = NaN, lastTs = firstTs) => ({ sent, firstTs, lastTs });

  it('never waits at full speed', () => {
    const pacer = new Pacer({ mode: 'max' });
    expect(pacer.waitFor(chunk(4096, 0, 1e9), 0)).toBe(0);
    expect(pacer.waitFor(chunk(4096, 2e9, 3e9), 0)).toBe(0);
  });

  it('holds a chunk until the rows sent before it are due, at a fixed rate', () => {
    const pacer = new Pacer({ mode: 'rate', rowsPerSecond: 1000 });
    expect(pacer.waitFor(chunk(100, 0), 0)).toBe(0);
    // 100 rows sent at 1,000 rows/s: the next chunk is due at 100 ms; 40 ms have passed.
    expect(pacer.waitFor(chunk(100, 0), 40)).toBe(60);
    expect(pacer.waitFor(chunk(100, 0), 150)).toBe(50);
  });

  it('does not hold back, nor count, a chunk with nothing to send', () => {
    const pacer = new Pacer({ mode: 'rate', rowsPerSecond: 1000 });
    expect(pacer.waitFor(chunk(100, 0), 0)).toBe(0);
    expect(pacer.waitFor(chunk(0), 0)).toBe(0);
    expect(pacer.waitFor(chunk(0), 0)).toBe(0);
    expect(pacer.waitFor(chunk(100, 0), 0)).toBe(100);
  });

  it('replays data time from the first row sent: an empty first chunk sets no start', () => {
    const pacer = new Pacer({ mode: 'speed', factor: 60 });
    expect(pacer.waitFor(chunk(0), 0)).toBe(0);
    const t0 = Date.UTC(2024, 0, 1);
    expect(pacer.waitFor(chunk(10, t0, t0 + 60_000), 0)).toBe(1000);
    // Ten data-minutes after the first row, at 60x, is due 10 s after the start.
    expect(pacer.waitFor(chunk(10, t0 + 300_000, t0 + 600_000), 4000)).toBe(6000);
  });
});

describe('sleep', () => {
  it('leaves no abort listener behind once it has waited', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const controller = new AbortController();
      for (let i = 0; i < 20; i++) {
        await sleep(1, controller.signal);
        expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('ends at once on abort, and then too leaves no listener or timer', async () => {
    const controller = new AbortController();
    const started = performance.now();
    const waiting = sleep(60_000, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    await waiting;
    expect(performance.now() - started).toBeLessThan(1000);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('does not wait when already aborted, nor without a signal beyond its time', async () => {
    const started = performance.now();
    await sleep(60_000, AbortSignal.abort());
    expect(performance.now() - started).toBeLessThan(1000);
    await sleep(5);
  });
});
