// Where a run stopped, so the next run resumes without skipping a row. The
// checkpoint only ever names a row whose predecessors Kafka has all
// acknowledged; rows after it may be sent twice, which the sink's upsert on
// id absorbs. A checkpoint belongs to a selection: the whole file, or the
// rows of --from-id N (a run with --from-id has a checkpoint of its own, so
// it never marks done the rows it skipped).
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

export function loadCheckpoint(file: string): Checkpoint | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Checkpoint;
  } catch {
    return undefined;
  }
}

/** The checkpoint cannot be written: the path, the cause and the fix, in one line. */
export class CheckpointError extends UserError {}

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
 * Write-then-rename, so a crash mid-write leaves the previous checkpoint; the
 * temporary file is this process's own. A file system error is a CheckpointError.
 */
export function saveCheckpoint(file: string, cp: Checkpoint) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(cp));
    fs.renameSync(tmp, file);
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
