import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from './errors.mjs';
import { acquireLock, holderState, processStart, readLock } from './lock.mjs';
import type { Holder } from './lock.mjs';

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-lock-'));
  file = path.join(dir, 'sub', 'x.lock');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const holder = (over: Partial<Holder> = {}): Holder => ({
  pid: process.pid,
  startedAt: '2026-01-02T03:04:05.678Z',
  argv: ['node', 'other.js'],
  token: 'theirs',
  ...over,
});
const writeHolder = (h: Holder) => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(h));
};
/** A pid that was ours a moment ago and is now gone. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const errorOf = async (promise: Promise<unknown>) => promise.then(() => undefined).catch((e: Error) => e);

describe('acquireLock', () => {
  it('creates the lock file with our pid, start time and argv; release removes it', async () => {
    const lock = await acquireLock(file);
    const held = readLock(file)!;
    expect(held).toMatchObject({ pid: process.pid, argv: process.argv, token: lock.holder.token });
    expect(Date.now() - Date.parse(held.startedAt)).toBeLessThan(10_000);
    lock.release();
    expect(fs.existsSync(file)).toBe(false);
    lock.release(); // twice is harmless
  });

  it('refuses a lock held by a live process, in one line naming its pid and what to do', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      writeHolder(holder({ pid: child.pid!, procStart: undefined }));
      const err = await errorOf(acquireLock(file, { what: 'producer', doing: 'is sending x.parquet to t' }));
      expect(err).toBeInstanceOf(UserError);
      expect(err!.message).toBe(
        `another producer (pid ${child.pid}, started 2026-01-02T03:04:05Z) is sending x.parquet to t: wait for it to finish or stop it`,
      );
      expect(readLock(file)?.token).toBe('theirs');
    } finally {
      child.kill();
    }
  });

  it('says what to do as the caller words it, given the holder', async () => {
    writeHolder(holder());
    const err = await errorOf(acquireLock(file, { fix: (h) => `stop it with \`kill ${h.pid}\`` }));
    expect(err!.message).toBe(`another process (pid ${process.pid}, started 2026-01-02T03:04:05Z): stop it with \`kill ${process.pid}\``);
  });

  it('takes over a stale lock: its process is gone', async () => {
    writeHolder(holder({ pid: deadPid() }));
    const lock = await acquireLock(file);
    expect(readLock(file)).toMatchObject({ pid: process.pid, token: lock.holder.token });
    lock.release();
  });

  it.runIf(processStart(process.pid) !== undefined)('takes over a stale lock: its pid now belongs to another process', async () => {
    writeHolder(holder({ pid: process.pid, procStart: '1' }));
    const lock = await acquireLock(file);
    expect(readLock(file)?.token).toBe(lock.holder.token);
    lock.release();
  });

  it('takes over a lock file left unreadable (a crash while writing it) once it is old', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"pid":');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    const lock = await acquireLock(file);
    expect(readLock(file)?.token).toBe(lock.holder.token);
    lock.release();
  });

  it('of processes racing for one stale lock, exactly one gets it', async () => {
    writeHolder(holder({ pid: deadPid() }));
    const script = `import('${path.join(import.meta.dirname, 'lock.mjs')}').then((m) => m.acquireLock(process.argv[1])).then(
      () => { console.log('held'); setTimeout(() => {}, 1500); },
      (e) => console.log(e.message))`;
    const outcomes = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<string>((resolve) => {
            const child = spawn(process.execPath, ['-e', script, file]);
            let out = '';
            child.stdout.on('data', (d) => {
              out += d;
            });
            child.on('close', () => resolve(out.trim()));
          }),
      ),
    );
    expect(outcomes.filter((o) => o === 'held')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o !== 'held'))
      expect(o).toMatch(/^another process \(pid \d+, started .*\): wait for it to finish or stop it$/);
    expect(fs.existsSync(file)).toBe(false); // the winner released it at exit
  });

  it('in wait mode, acquires once the holder releases', async () => {
    const first = await acquireLock(file);
    setTimeout(() => first.release(), 300);
    const started = Date.now();
    const waitedFor: number[] = [];
    const second = await acquireLock(file, { onBusy: 'wait', timeoutMs: 5000, pollMs: 50, onWait: (h) => waitedFor.push(h.pid) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(waitedFor).toEqual([first.holder.pid]);
    expect(readLock(file)?.token).toBe(second.holder.token);
    second.release();
  });

  it('in wait mode, gives up after timeoutMs, naming the holder', async () => {
    const first = await acquireLock(file);
    const started = Date.now();
    const err = await errorOf(acquireLock(file, { onBusy: 'wait', timeoutMs: 300, pollMs: 50, what: 'platform:up' }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err!.message).toMatch(
      new RegExp(`^another platform:up \\(pid ${process.pid}, started .*\\), still after 0.3 s of waiting: wait for it`),
    );
    first.release();
  });

  it('release does not remove a lock that is no longer ours', async () => {
    const lock = await acquireLock(file);
    writeHolder(holder({ token: 'someone else' }));
    lock.release();
    expect(readLock(file)?.token).toBe('someone else');
  });

  it('is released when its process exits without releasing it', () => {
    const script = `import('${path.join(import.meta.dirname, 'lock.mjs')}').then((m) => m.acquireLock(process.argv[1])).then(() => console.log('held'))`;
    const res = spawnSync(process.execPath, ['-e', script, file], { encoding: 'utf8' });
    expect(res.stdout.trim(), res.stderr).toBe('held');
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('holderState', () => {
  const alive = () => true;
  it('is live while its pid runs the process that took it', () => {
    expect(holderState(holder({ procStart: '42' }), alive, () => '42')).toEqual({ live: true });
    // Where /proc tells nothing, a live pid counts as the holder.
    expect(holderState(holder({ procStart: '42' }), alive, () => undefined)).toEqual({ live: true });
    expect(holderState(holder(), alive, () => '7')).toEqual({ live: true });
  });
  it('is stale when the pid is dead or reused', () => {
    expect(holderState(holder({ pid: 9 }), () => false)).toEqual({ live: false, why: 'process 9 is gone' });
    expect(holderState(holder({ pid: 9, procStart: '42' }), alive, () => '43')).toEqual({
      live: false,
      why: 'pid 9 now belongs to another process',
    });
  });
});
