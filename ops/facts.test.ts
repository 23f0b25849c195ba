import { describe, expect, it } from 'vitest';
import { behind } from './facts.mjs';
import { pauseAfter } from './watchdog.mjs';

describe('summary freshness', () => {
  it('is up to date while the newest bucket covers the newest raw row', () => {
    expect(behind('2025-01-01T00:09:00Z', '2025-01-01T00:10:00Z')).toBe('up to date');
  });
  it('counts whole minutes past the newest bucket end', () => {
    expect(behind('2025-01-01T00:10:00Z', '2025-01-01T00:10:00Z')).toBe('0 min');
    expect(behind('2025-01-01T00:31:30Z', '2025-01-01T00:10:00Z')).toBe('22 min');
  });
  it('has nothing to say about an empty table', () => {
    expect(behind(null, '2025-01-01T00:10:00Z')).toBe('-');
    expect(behind('2025-01-01T00:10:00Z', null)).toBe('-');
  });
});

describe('watchdog backoff', () => {
  it('doubles from 2 s and stops at a minute', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(pauseAfter)).toEqual([2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
  });
});
