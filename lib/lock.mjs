// @ts-check
// A lock file, so that two processes never work on the same state at once
// (two producers on one checkpoint, two `platform:up`). Created with O_EXCL:
// of two processes racing for it, one creates it and the other finds it. It
// holds who owns it; a lock whose owner is gone (killed, crashed: the pid is
// dead, or now another program's) is stale and taken over. An owner removes
// its lock when done, and at exit if it forgot.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.mjs';
import { delay, isAlive } from './procs.mjs';

/**
 * What a lock file holds. `procStart` (the kernel's start time of the
 * process, where /proc has it) tells a live owner from a process that got
 * its pid later; `token` tells this acquisition from any other.
 * @typedef {{ pid: number, startedAt: string, argv: string[], procStart?: string, token: string }} Holder
 */

/**
 * @typedef {object} LockOptions
 * @property {'fail' | 'wait'} [onBusy] fail at once (the default), or wait until the owner is done
 * @property {number} [timeoutMs] how long 'wait' waits (default 60 s)
 * @property {number} [pollMs] how often 'wait' looks again (default 200 ms)
 * @property {(holder: Holder) => void} [onWait] called once, with the holder, when 'wait' starts waiting
 * @property {string} [what] who the owner is, for the message: `another <what> (pid 123, started ...)`
 * @property {string} [doing] what the owner does, after that: `is sending x.parquet to t`
 * @property {string | ((holder: Holder) => string)} [fix] what to do about it (default: wait for it to finish or stop it)
 */

/** @typedef {{ file: string, holder: Holder, release: () => void }} Lock */

/** A started process's start time in clock ticks since boot, from /proc; undefined elsewhere. @param {number} pid */
export function processStart(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether a holder still owns its lock, given the process table. Pure apart
 * from the lookups passed in, so the stale cases can be unit-tested.
 * @param {Holder} holder
 * @param {(pid: number) => boolean} alive
 * @param {(pid: number) => string | undefined} startOf
 * @returns {{ live: true } | { live: false, why: string }}
 */
export function holderState(holder, alive = isAlive, startOf = processStart) {
  if (!alive(holder.pid)) return { live: false, why: `process ${holder.pid} is gone` };
  const start = holder.procStart === undefined ? undefined : startOf(holder.pid);
  if (start !== undefined && start !== holder.procStart) return { live: false, why: `pid ${holder.pid} now belongs to another process` };
  return { live: true };
}

/** The holder in a lock file; null when it cannot be read or parsed, undefined when there is none. @param {string} file */
export function readLock(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const holder = JSON.parse(text);
    return Number.isInteger(holder?.pid) && typeof holder.token === 'string' ? /** @type {Holder} */ (holder) : null;
  } catch {
    return null;
  }
}

/** @param {string} iso */
const when = (iso) => iso.replace(/\.\d+Z$/, 'Z');

/**
 * Takes the lock `file`, or reports who has it.
 * - free: creates it (O_EXCL) with this process as holder;
 * - held by a live process: onBusy 'fail' throws a UserError naming the
 *   holder's pid and what to do; 'wait' looks again every pollMs until it
 *   is free, and throws the same way after timeoutMs;
 * - stale (its process is gone): takes it over.
 * `release()` removes the file if it is still ours; it also runs at exit.
 * @param {string} file
 * @param {LockOptions} [opts]
 * @returns {Promise<Lock>}
 */
export async function acquireLock(file, opts = {}) {
  const {
    onBusy = 'fail',
    timeoutMs = 60_000,
    pollMs = 200,
    what = 'process',
    doing = '',
    fix = 'wait for it to finish or stop it',
    onWait,
  } = opts;
  let waiting = false;
  const deadline = Date.now() + timeoutMs;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  /** @type {Holder} */
  const me = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    argv: process.argv,
    procStart: processStart(process.pid),
    token: crypto.randomBytes(8).toString('hex'),
  };
  const text = `${JSON.stringify(me)}\n`;
  while (true) {
    if (create(file, text)) return held(file, me);
    const holder = readLock(file);
    if (holder === undefined) continue; // released meanwhile: try again
    if (holder === null) {
      // Being written this instant, or left half-written by a crash.
      if (ageMs(file) < 2000) {
        await delay(20);
        continue;
      }
      takeOver(file, null);
      continue;
    }
    const state = holderState(holder);
    if (!state.live) {
      takeOver(file, holder);
      continue;
    }
    const who = `another ${what} (pid ${holder.pid}, started ${when(holder.startedAt)})${doing ? ` ${doing}` : ''}`;
    const todo = typeof fix === 'function' ? fix(holder) : fix;
    if (onBusy === 'fail') throw new UserError(`${who}: ${todo}`);
    if (!waiting) {
      waiting = true;
      onWait?.(holder);
    }
    if (Date.now() >= deadline) {
      throw new UserError(
        `${who}, still after ${(timeoutMs / 1000).toLocaleString('en', { maximumFractionDigits: 1 })} s of waiting: ${todo}`,
      );
    }
    await delay(Math.max(1, Math.min(pollMs, deadline - Date.now())));
  }
}

/** Creates the lock file unless it exists. @param {string} file @param {string} text */
function create(file, text) {
  let fd;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** @param {string} file */
function ageMs(file) {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Removes a stale lock so that `create` can try again. Moves it aside first
 * and checks it is the one found stale: if another process took it over in
 * the meantime, its fresh lock is put back.
 * @param {string} file @param {Holder | null} stale
 */
function takeOver(file, stale) {
  const aside = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.stale`;
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT') return; // someone else removed it
    throw err;
  }
  const moved = readLock(aside);
  const same = stale === null ? moved === null : moved?.token === stale.token;
  if (!same) {
    try {
      fs.linkSync(aside, file); // only if no lock was created since
    } catch {
      // A newer lock is in place: it stands.
    }
  }
  fs.rmSync(aside, { force: true });
}

/** @param {string} file @param {Holder} me @returns {Lock} */
function held(file, me) {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      if (readLock(file)?.token === me.token) fs.rmSync(file, { force: true });
    } catch {
      // Nothing to remove.
    }
  };
  process.on('exit', release);
  return { file, holder: me, release };
}
