import { describe, expect, it } from 'vitest';
import { resumePoint } from './checkpoint.js';
import type { Checkpoint } from './checkpoint.js';

const file = { file: '/d/x.parquet', size: 100, mtimeMs: 5 };
const cp = (over: Partial<Checkpoint> = {}): Checkpoint => ({
  ...file,
  topic: 't',
  nextRow: 4096,
  rows: 10_000,
  complete: false,
  updatedAt: '2026-01-01T00:00:00Z',
  ...over,
});

describe('resumePoint', () => {
  it('starts at 0 without a checkpoint', () => {
    expect(resumePoint(undefined, file, 't', false)).toEqual({ row: 0, note: null });
  });
  it('resumes at the first unacknowledged row', () => {
    expect(resumePoint(cp(), file, 't', false)).toMatchObject({
      row: 4096,
      note: expect.stringContaining('resuming at row 4,096 of 10,000'),
    });
  });
  it('starts over when the file changed since', () => {
    expect(resumePoint(cp(), { ...file, size: 101 }, 't', false)).toMatchObject({
      row: 0,
      note: expect.stringContaining('changed since the checkpoint'),
    });
  });
  it('ignores a checkpoint of another topic', () => {
    expect(resumePoint(cp({ topic: 'other' }), file, 't', false).row).toBe(0);
  });
  it('has nothing to send after a complete run, unless --restart', () => {
    expect(resumePoint(cp({ complete: true, nextRow: 10_000 }), file, 't', false)).toMatchObject({
      row: 10_000,
      note: expect.stringContaining('--restart'),
    });
    expect(resumePoint(cp({ complete: true }), file, 't', true)).toMatchObject({ row: 0, note: 'checkpoint ignored (--restart)' });
  });
});
