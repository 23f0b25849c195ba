import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError, checkpointFile, checkpointWriteError, loadCheckpoint, resumePoint, saveCheckpoint } from './checkpoint.js';
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

describe('--from-id has a checkpoint of its own', () => {
  it('keys the checkpoint by file, topic and --from-id: a --from-id run neither reads nor writes the plain run’s', () => {
    const plain = checkpointFile('/run', '/d/x.parquet', 't');
    expect(checkpointFile('/run', '/d/x.parquet', 't', undefined)).toBe(plain);
    expect(checkpointFile('/run', '/d/x.parquet', 't', 1001)).not.toBe(plain);
    expect(checkpointFile('/run', '/d/x.parquet', 't', 1001)).toBe(checkpointFile('/run', '/d/x.parquet', 't', 1001));
    expect(checkpointFile('/run', '/d/x.parquet', 't', 1001)).not.toBe(checkpointFile('/run', '/d/x.parquet', 't', 1002));
  });

  it('a checkpoint of another selection counts for nothing', () => {
    // A complete --from-id run says nothing about the rows below its id.
    expect(resumePoint(cp({ complete: true, nextRow: 10_000, fromId: 1001 }), file, 't', false)).toEqual({ row: 0, note: null });
    expect(resumePoint(cp({ nextRow: 4096 }), file, 't', false, 1001)).toEqual({ row: 0, note: null });
    expect(resumePoint(cp({ nextRow: 4096, fromId: 7 }), file, 't', false, 1001)).toEqual({ row: 0, note: null });
  });

  it('a --from-id run resumes its own checkpoint and says which rows it sends', () => {
    expect(resumePoint(cp({ fromId: 1001 }), file, 't', false, 1001)).toMatchObject({
      row: 4096,
      note: expect.stringMatching(/^resuming at row 4,096 of 10,000 \(rows with id 1,001 or more; checkpoint .*\)$/),
    });
    expect(resumePoint(cp({ fromId: 1001, complete: true, nextRow: 10_000 }), file, 't', false, 1001)).toMatchObject({
      row: 10_000,
      note: expect.stringMatching(/rows with id 1,001 or more of \/d\/x.parquet were already produced .*--restart sends them again/),
    });
  });
});

describe('saveCheckpoint', () => {
  it('writes through a temporary file of its own: another process’s is left alone', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-cp-'));
    try {
      const target = path.join(dir, 'producer', 'checkpoint-x.json');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      // What another producer's write-then-rename would have half-done.
      fs.writeFileSync(`${target}.tmp`, 'theirs');
      saveCheckpoint(target, cp({ nextRow: 7 }));
      expect(loadCheckpoint(target)).toMatchObject({ nextRow: 7 });
      expect(fs.readFileSync(`${target}.tmp`, 'utf8')).toBe('theirs');
      expect(fs.readdirSync(path.dirname(target)).sort()).toEqual(['checkpoint-x.json', 'checkpoint-x.json.tmp']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with one line naming the checkpoint and the fix when the file system refuses it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-cp-'));
    try {
      // A file where the producer's folder should be: ENOTDIR or EEXIST, whoever runs the test.
      fs.writeFileSync(path.join(dir, 'producer'), '');
      const target = path.join(dir, 'producer', 'checkpoint-x.json');
      const err = (() => {
        try {
          saveCheckpoint(target, cp());
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err!.message).toMatch(new RegExp(`^cannot write the checkpoint ${target} \\(E[A-Z]+: .*\\): `));
      expect(err!.message).not.toMatch(/\n/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['ENOSPC', /free some disk space/],
    ['EDQUOT', /free some disk space/],
    ['EACCES', /make \/s\/run\/producer writable .*or set STATE_DIR/],
    ['EPERM', /make \/s\/run\/producer writable .*or set STATE_DIR/],
    ['EROFS', /set STATE_DIR to a folder on a writable disk/],
    ['EIO', /set STATE_DIR/],
  ])('%s: says what to do', (code, fix) => {
    const cause = Object.assign(new Error(`${code}: it failed, open '/s/run/producer/c.json.1.tmp'`), { code });
    const err = checkpointWriteError('/s/run/producer/c.json', cause);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(fix);
    expect(err.message).toMatch(/^cannot write the checkpoint \/s\/run\/producer\/c.json/);
  });
});
