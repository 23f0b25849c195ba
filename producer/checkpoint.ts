// Where a run stopped, so the next run resumes without skipping a row. The
// checkpoint only ever names a row whose predecessors Kafka has all
// acknowledged; rows after it may be sent twice, which the sink's upsert on
// id absorbs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface FileIdentity {
  file: string;
  size: number;
  mtimeMs: number;
}

export interface Checkpoint extends FileIdentity {
  topic: string;
  /** Every row before this index is acknowledged by Kafka. */
  nextRow: number;
  rows: number;
  complete: boolean;
  updatedAt: string;
}

export function checkpointFile(runDir: string, file: string, topic: string) {
  const key = crypto
    .createHash('sha1')
    .update(`${path.resolve(file)}\0${topic}`)
    .digest('hex')
    .slice(0, 12);
  return path.join(runDir, 'producer', `checkpoint-${key}.json`);
}

/**
 * Where to start, given an old checkpoint (if any). Pure.
 * A checkpoint of another file, or of this file since changed, counts for nothing.
 */
export function resumePoint(
  cp: Checkpoint | undefined,
  current: FileIdentity,
  topic: string,
  restart: boolean,
): { row: number; note: string | null } {
  if (!cp || restart) return { row: 0, note: restart && cp ? 'checkpoint ignored (--restart)' : null };
  if (cp.topic !== topic || cp.file !== current.file) return { row: 0, note: null };
  if (cp.size !== current.size || cp.mtimeMs !== current.mtimeMs) {
    return { row: 0, note: `${current.file} changed since the checkpoint: starting from the first row` };
  }
  if (cp.complete)
    return { row: cp.rows, note: `${current.file} was already produced in full (checkpoint ${cp.updatedAt}); --restart sends it again` };
  return {
    row: cp.nextRow,
    note: `resuming at row ${cp.nextRow.toLocaleString('en')} of ${cp.rows.toLocaleString('en')} (checkpoint ${cp.updatedAt})`,
  };
}

export function loadCheckpoint(file: string): Checkpoint | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Checkpoint;
  } catch {
    return undefined;
  }
}

/** Write-then-rename, so a crash mid-write leaves the previous checkpoint. */
export function saveCheckpoint(file: string, cp: Checkpoint) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(cp));
  fs.renameSync(tmp, file);
}
