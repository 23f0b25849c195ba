import { describe, expect, it } from 'vitest';
import { UserError } from '#lib/errors.mjs';
import { LONGEST_LINE, errorLine, rateLimited } from './log-lines.mjs';

describe('errorLine', () => {
  it('a user error: its line, then the causes it does not quote', () => {
    // Shaped as connectApi's error when nothing listens, fetch's TypeError between.
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8083'), { code: 'ECONNREFUSED' });
    const fetchFailed = new TypeError('fetch failed', { cause: refused });
    const err = new UserError('Kafka Connect is not reachable at http://127.0.0.1:8083 (fetch failed): run `npm run platform:up`', {
      cause: fetchFailed,
    });
    expect(errorLine(err)).toBe(
      'Kafka Connect is not reachable at http://127.0.0.1:8083 (fetch failed): run `npm run platform:up` (cause: connect ECONNREFUSED 127.0.0.1:8083)',
    );
  });

  it('a cause without a message: its code, or its first error’s (a refusal on both ::1 and 127.0.0.1)', () => {
    const both = Object.assign(
      new AggregateError([new Error('connect ECONNREFUSED ::1:8083'), new Error('connect ECONNREFUSED 127.0.0.1:8083')]),
      {
        code: 'ECONNREFUSED',
      },
    );
    expect(errorLine(new UserError('Connect is away', { cause: both }))).toBe('Connect is away (cause: connect ECONNREFUSED ::1:8083)');
    expect(errorLine(new UserError('disk', { cause: Object.assign(new Error(''), { code: 'EIO' }) }))).toBe('disk (cause: EIO)');
  });

  it('a file system error is led by its code', () => {
    const full = Object.assign(new Error('no space left on device, write'), { code: 'ENOSPC' });
    expect(errorLine(full)).toMatch(/^Error: ENOSPC: no space left on device, write \(at .*log-lines\.test\.ts:\d+:\d+\)$/);
  });

  it('a bug of ours: its type and where it was thrown, so it can be found', () => {
    let bug: unknown;
    try {
      (null as unknown as { status: string }).status;
    } catch (err) {
      bug = err;
    }
    expect(errorLine(bug)).toMatch(/^TypeError: Cannot read properties of null \(reading 'status'\) \(at .*log-lines\.test\.ts:\d+:\d+\)$/);
  });

  it('is one line, and not a long one', () => {
    expect(errorLine(new UserError('first\n  second\nthird'))).toBe('first | second | third');
    expect(errorLine('a thrown string')).toBe('a thrown string');
    const long = errorLine(new UserError('x'.repeat(5000)));
    expect(long).toBe(`${'x'.repeat(LONGEST_LINE)}… [4000 more characters]`);
  });

  it('stops at a cause that causes itself', () => {
    const a = new Error('a');
    a.cause = a;
    expect(errorLine(new UserError('top', { cause: a }))).toBe('top (cause: a)');
  });
});

describe('rateLimited', () => {
  function harness(everyMs = 60_000) {
    let t = Date.UTC(2026, 0, 1);
    const lines: string[] = [];
    const limited = rateLimited((line) => lines.push(line), { everyMs, now: () => t });
    return { limited, lines, at: (ms: number) => (t = Date.UTC(2026, 0, 1) + ms) };
  }

  it('writes a line at once, then the same line once a minute with how many came between', () => {
    const { limited, lines, at } = harness();
    for (let s = 0; s <= 126; s += 6) {
      at(s * 1000);
      limited.log('Connect is away');
      limited.flush();
    }
    expect(lines).toEqual([
      'Connect is away',
      'Connect is away [9 more times since 2026-01-01T00:00:00.000Z, the last at 2026-01-01T00:00:54.000Z]',
      'Connect is away [9 more times since 2026-01-01T00:01:00.000Z, the last at 2026-01-01T00:01:54.000Z]',
    ]);
  });

  it('writes other lines at once, each limited on its own', () => {
    const { limited, lines, at } = harness();
    limited.log('a');
    at(1000);
    limited.log('b');
    limited.log('a');
    limited.log('b');
    expect(lines).toEqual(['a', 'b']);
  });

  it('tells the count of a line that stopped coming, a minute after its last; nothing for one that came once', () => {
    const { limited, lines, at } = harness();
    limited.log('a');
    limited.log('once');
    at(5000);
    limited.log('a');
    at(64_000);
    limited.flush();
    expect(lines).toEqual(['a', 'once']);
    at(65_000);
    limited.flush();
    expect(lines).toEqual(['a', 'once', 'a [1 more time since 2026-01-01T00:00:00.000Z, the last at 2026-01-01T00:00:05.000Z]']);
    // Told and forgotten: the next one is new.
    limited.log('a');
    expect(lines.at(-1)).toBe('a');
  });

  it('at the end, tells every count still untold', () => {
    const { limited, lines } = harness();
    limited.log('a');
    limited.log('a');
    limited.log('a');
    limited.flush(true);
    expect(lines).toEqual(['a', 'a [2 more times since 2026-01-01T00:00:00.000Z, the last at 2026-01-01T00:00:00.000Z]']);
  });
});
