// Where a run stopped, so the next run resumes without skipping a row. The
// checkpoint only ever names a row whose predecessors Kafka has all
// acknowledged; rows after it may be sent twice, which the sink's upsert on
// id absorbs. A checkpoint belongs to a selection: the whole file, or the
// rows of --from-id N (a run with --from-id has a checkpoint of its own, so
// it never marks done the rows it skipped). A checkpoint that is there but
// cannot be read stops the run: starting again from row 0 unasked would send
// the whole file again, and one that is quietly wrong could skip rows.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';

export interface FileIdentity {
  file: string;
  size: number;
  mtimeMs: number;
}

export interface Checkpoint extends FileIdentity {
  topic: string;
  /** The run's --from-id: only rows with this id or more were sent; absent for the whole file. */
  fromId?: number;
  /** Every row before this index is acknowledged by Kafka. */
  nextRow: number;
  rows: number;
  complete: boolean;
  updatedAt: string;
}

/**
 * The checkpoint of a file sent to a topic: of the whole file, or of the rows
 * a --from-id selects (each selection its own file, so that the runs of one
 * never mark done the rows of another).
 */
export function checkpointFile(runDir: string, file: string, topic: string, fromId?: number) {
  const selection = fromId === undefined ? '' : `\0from-id=${fromId}`;
  const key = crypto
    .createHash('sha1')
    .update(`${path.resolve(file)}\0${topic}${selection}`)
    .digest('hex')
    .slice(0, 12);
  return path.join(runDir, 'producer', `checkpoint-${key}.json`);
}

/**
 * Where to start, given an old checkpoint (if any). Pure.
 * A checkpoint of another file, topic or selection (--from-id), or of this
 * file since changed, counts for nothing.
 */
export function resumePoint(
  cp: Checkpoint | undefined,
  current: FileIdentity,
  topic: string,
  restart: boolean,
  fromId?: number,
): { row: number; note: string | null } {
  if (!cp || restart) return { row: 0, note: restart && cp ? 'checkpoint ignored (--restart)' : null };
  if (cp.topic !== topic || cp.file !== current.file || cp.fromId !== fromId) return { row: 0, note: null };
  if (cp.size !== current.size || cp.mtimeMs !== current.mtimeMs) {
    return { row: 0, note: `${current.file} changed since the checkpoint: starting from the first row` };
  }
  const selected = fromId === undefined ? '' : `rows with id ${fromId.toLocaleString('en')} or more`;
  if (cp.complete) {
    return {
      row: cp.rows,
      note: selected
        ? `${selected} of ${current.file} were already produced in full (checkpoint ${cp.updatedAt}); --restart sends them again`
        : `${current.file} was already produced in full (checkpoint ${cp.updatedAt}); --restart sends it again`,
    };
  }
  return {
    row: cp.nextRow,
    note: `resuming at row ${cp.nextRow.toLocaleString('en')} of ${cp.rows.toLocaleString('en')} (${selected ? `${selected}; ` : ''}checkpoint ${cp.updatedAt})`,
  };
}

/** The checkpoint cannot be read or written: the path, the cause and the fix, in one line. */
export class CheckpointError extends UserError {}

/**
 * What a checkpoint's text holds, or why it is none (a crash of the disk or
 * the host, a hand edit, another program's file). Pure.
 */
export function parseCheckpoint(text: string): Checkpoint | string {
  if (text.trim() === '') return 'it is empty';
  let cp: Partial<Record<keyof Checkpoint, unknown>>;
  try {
    cp = JSON.parse(text);
  } catch (err) {
    return `it is not JSON: ${(err as Error).message}`;
  }
  if (typeof cp !== 'object' || cp === null || Array.isArray(cp)) return 'it is not a JSON object';
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const bad = [
    typeof cp.file !== 'string' && 'file',
    typeof cp.topic !== 'string' && 'topic',
    !count(cp.size) && 'size',
    !Number.isFinite(cp.mtimeMs) && 'mtimeMs',
    !count(cp.nextRow) && 'nextRow',
    !count(cp.rows) && 'rows',
    typeof cp.complete !== 'boolean' && 'complete',
    typeof cp.updatedAt !== 'string' && 'updatedAt',
    cp.fromId !== undefined && !count(cp.fromId) && 'fromId',
  ].filter(Boolean);
  if (bad.length > 0) return `missing or invalid: ${bad.join(', ')}`;
  if ((cp.nextRow as number) > (cp.rows as number)) return `nextRow ${cp.nextRow} is past the last row (${cp.rows})`;
  return cp as Checkpoint;
}

/**
 * The checkpoint in `file`, undefined when there is none (nor anything else
 * by that name: a folder in the way is no checkpoint, and the first write
 * names it). One that is there and cannot be read is a CheckpointError whose
 * fix is to delete it: --restart would not help, the run reads the checkpoint
 * before it looks at --restart (produce.ts).
 */
export function loadCheckpoint(file: string): Checkpoint | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    throw new CheckpointError(
      `cannot read the checkpoint ${file} (${errnoText(err)}): make it readable to resume there, or delete it to send the file from its first row`,
      { cause: err },
    );
  }
  const cp = parseCheckpoint(text);
  if (typeof cp !== 'string') return cp;
  throw new CheckpointError(
    `the checkpoint ${file} is corrupt (${cp}): delete it to send the file from its first row (the sink's upsert absorbs rows sent twice)`,
  );
}

/** What to do when the file system refuses a file of the producer's state (in `dir`), by error code. */
export function writeFix(code: string | undefined, dir: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'free some disk space (or set STATE_DIR to a folder on another disk) and run again';
    case 'EACCES':
    case 'EPERM':
      return `make ${dir} writable for this user, or set STATE_DIR to a folder you can write to, and run again`;
    case 'EROFS':
      return 'set STATE_DIR to a folder on a writable disk and run again';
    default:
      return `check ${dir} (or set STATE_DIR to another folder) and run again`;
  }
}

/** A file system error on the checkpoint as a CheckpointError. Pure. */
export function checkpointWriteError(file: string, err: unknown): CheckpointError {
  return new CheckpointError(
    `cannot write the checkpoint ${file} (${errnoText(err)}): ${writeFix((err as NodeJS.ErrnoException).code, path.dirname(file))}; what Kafka acknowledged since the last checkpoint is sent again then`,
    { cause: err },
  );
}

/** A file system error's message, led by its code. */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code && !e.message.startsWith(e.code) ? `${e.code}: ${e.message}` : e.message;
}

/**
 * Makes a directory's entries (a rename, a new file) durable. Some systems
 * cannot open or sync a directory at all (Windows): there the rename is as
 * durable as they make it.
 */
export function fsyncDir(dir: string) {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR' || (err as NodeJS.ErrnoException).code === 'EPERM') return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EPERM') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write, fsync, rename, fsync the folder: a crash mid-write leaves the
 * previous checkpoint, and a crash of the host after it leaves this one,
 * never an empty file (a rename can reach the disk before the data it names
 * does). The temporary file is this process's own. A file system error is a
 * CheckpointError.
 */
export function saveCheckpoint(file: string, cp: Checkpoint) {
  const tmp = `${file}.${process.pid}.tmp`;
  const dir = path.dirname(file);
  try {
    // Each folder made here is an entry of its parent, to be made durable too.
    const made = fs.mkdirSync(dir, { recursive: true });
    for (let d = dir; made; d = path.dirname(d)) {
      fsyncDir(path.dirname(d));
      if (d === made) break;
    }
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, JSON.stringify(cp));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing to clean up where nothing could be written.
    }
    if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err;
    throw checkpointWriteError(file, err);
  }
}
