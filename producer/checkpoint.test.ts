import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CheckpointError,
  checkpointFile,
  checkpointWriteError,
  loadCheckpoint,
  parseCheckpoint,
  resumePoint,
  saveCheckpoint,
} from './checkpoint.js';
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

describe('saveCheckpoint makes the checkpoint durable', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** The file system calls of one save, in order, each with the path it was about. */
  function callsOf(save: () => void) {
    const paths = new Map<number, string>();
    const calls: string[] = [];
    const { openSync, fsyncSync, renameSync, writeFileSync } = fs;
    vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, flags: fs.OpenMode = 'r') => {
      const fd = openSync(p, flags);
      paths.set(fd, String(p));
      return fd;
    }) as typeof fs.openSync);
    vi.spyOn(fs, 'writeFileSync').mockImplementation(((target: fs.PathOrFileDescriptor, ...rest: [string]) => {
      calls.push(`write ${typeof target === 'number' ? paths.get(target) : target}`);
      writeFileSync(target, ...rest);
    }) as typeof fs.writeFileSync);
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
      calls.push(`fsync ${paths.get(fd)}`);
      fsyncSync(fd);
    });
    vi.spyOn(fs, 'renameSync').mockImplementation((from: fs.PathLike, to: fs.PathLike) => {
      calls.push(`rename ${from} -> ${to}`);
      renameSync(from, to);
    });
    save();
    return calls;
  }

  it('fsyncs the temporary file before the rename and the folder after it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-cp-'));
    try {
      const folder = path.join(dir, 'producer');
      fs.mkdirSync(folder);
      const target = path.join(folder, 'checkpoint-x.json');
      const tmp = `${target}.${process.pid}.tmp`;
      expect(callsOf(() => saveCheckpoint(target, cp({ nextRow: 9 })))).toEqual([
        `write ${tmp}`,
        `fsync ${tmp}`,
        `rename ${tmp} -> ${target}`,
        `fsync ${folder}`,
      ]);
      expect(loadCheckpoint(target)).toMatchObject({ nextRow: 9 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fsyncs the parent of each folder it had to make', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-cp-'));
    try {
      const target = path.join(dir, 'state', 'producer', 'checkpoint-x.json');
      expect(callsOf(() => saveCheckpoint(target, cp())).slice(0, 2)).toEqual([`fsync ${path.join(dir, 'state')}`, `fsync ${dir}`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a checkpoint that cannot be read', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('parseCheckpoint: says what is wrong with the text', () => {
    expect(parseCheckpoint(JSON.stringify(cp()))).toEqual(cp());
    expect(parseCheckpoint(JSON.stringify(cp({ fromId: 1001 })))).toEqual(cp({ fromId: 1001 }));
    expect(parseCheckpoint('')).toBe('it is empty');
    expect(parseCheckpoint('\0\0\0\0')).toMatch(/^it is not JSON: /);
    expect(parseCheckpoint('{"topic":"t","nextRow":40')).toMatch(/^it is not JSON: /);
    expect(parseCheckpoint('[1]')).toBe('it is not a JSON object');
    expect(parseCheckpoint('null')).toBe('it is not a JSON object');
    expect(parseCheckpoint(JSON.stringify({ ...cp(), nextRow: -1 }))).toBe('missing or invalid: nextRow');
    expect(parseCheckpoint(JSON.stringify({ ...cp(), nextRow: '7', topic: undefined }))).toBe('missing or invalid: topic, nextRow');
    expect(parseCheckpoint(JSON.stringify(cp({ nextRow: 10_001 })))).toBe('nextRow 10001 is past the last row (10000)');
  });

  // Before, each of these was taken for no checkpoint: the run started again from row 0.
  it.each([
    ['empty (the host crashed after the rename reached the disk, before the data did)', '', 'it is empty'],
    ['cut short', '{"file":"/d/x.parquet","size":100,"mtimeMs":5,"topic":"t","nextRow":40', 'it is not JSON: '],
    ['of another shape', '{"next":4096}', 'missing or invalid: file, topic, size, mtimeMs, nextRow, rows, complete, updatedAt'],
  ])('%s: one line naming the file and the fix', (_, text, why) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-cp-'));
    try {
      const target = path.join(dir, 'checkpoint-x.json');
      fs.writeFileSync(target, text);
      const err = (() => {
        try {
          loadCheckpoint(target);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err!.message).toContain(`the checkpoint ${target} is corrupt (${why}`);
      expect(err!.message).toMatch(/\): delete it to send the file from its first row \(the sink's upsert absorbs rows sent twice\)$/);
      expect(err!.message).not.toMatch(/\n/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('one the file system will not give: its code, the file, and the fix', () => {
    const target = '/s/run/producer/checkpoint-x.json';
    vi.spyOn(fs, 'readFileSync').mockImplementation(() => {
      throw Object.assign(new Error(`EACCES: permission denied, open '${target}'`), { code: 'EACCES' });
    });
    expect(() => loadCheckpoint(target)).toThrow(
      new CheckpointError(
        `cannot read the checkpoint ${target} (EACCES: permission denied, open '${target}'): make it readable to resume there, or delete it to send the file from its first row`,
      ),
    );
  });

  it('none at all, or a folder in its place, is no checkpoint (the first write names the folder)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-cp-'));
    try {
      expect(loadCheckpoint(path.join(dir, 'none.json'))).toBeUndefined();
      fs.mkdirSync(path.join(dir, 'folder.json'));
      expect(loadCheckpoint(path.join(dir, 'folder.json'))).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
