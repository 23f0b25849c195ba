import { describe, expect, it } from 'vitest';
import { parseStat } from './cpu.mjs';

describe('parseStat', () => {
  it('reads ppid and CPU ticks after the command name, spaces and parentheses in it included', () => {
    const stat = '4242 (java (main) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 350 120 7 3 20 0 40 0 1000 1 1 18446744073709551615';
    expect(parseStat(stat)).toEqual({ ppid: 17, own: 470, reaped: 10 });
  });
});
