import { describe, expect, it } from 'vitest';
import { cell } from './cli.mjs';

describe('a table cell', () => {
  it('rounds fractions for display, keeps integers and text, shows times as ISO', () => {
    expect(cell(102.65500000000002)).toBe('102.655');
    expect(cell(200.7775)).toBe('200.7775');
    expect(cell(1 / 3)).toBe('0.3333');
    expect(cell(527040)).toBe('527040');
    expect(cell('ok')).toBe('ok');
    expect(cell(new Date(Date.UTC(2024, 0, 1)))).toBe('2024-01-01T00:00:00.000Z');
  });
});
