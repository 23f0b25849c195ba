// @ts-check
// CPU time of the platform's processes, from /proc: each service's process
// and its children (PostgreSQL's backends), those alive and those already
// reaped (cutime/cstime), in seconds. A difference of two readings around a
// load, divided by its rows, is the CPU each row cost each process.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { services } from '../platform/lifecycle.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * utime, stime, cutime, cstime and ppid of a process, from /proc/<pid>/stat. Pure given the text.
 * @param {string} stat @returns {{ ppid: number, own: number, reaped: number }} ticks
 */
export function parseStat(stat) {
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

function table() {
  /** @type {Map<number, ReturnType<typeof parseStat>>} */
  const procs = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      procs.set(Number(entry), parseStat(fs.readFileSync(`/proc/${entry}/stat`, 'utf8')));
    } catch {
      // gone meanwhile
    }
  }
  return procs;
}

/**
 * CPU seconds so far of each kind of service: kafka (all nodes), connect (all
 * workers), registry, postgres.
 * @param {Config} config @returns {Record<string, number>}
 */
export function serviceCpu(config) {
  const procs = table();
  /** A process, its children reaped and its children alive (each with theirs). @param {number} pid @returns {number} */
  const tree = (pid) => {
    let ticks = (procs.get(pid)?.own ?? 0) + (procs.get(pid)?.reaped ?? 0);
    for (const [child, p] of procs) if (p.ppid === pid) ticks += tree(child);
    return ticks;
  };
  /** @type {Record<string, number>} */
  const out = { producer: 0, kafka: 0, connect: 0, postgres: 0, registry: 0 };
  for (const svc of services(config)) {
    const kind = svc.name.replace(/-\d+$/, '');
    if (!(kind in out)) continue;
    const info = svc.pid();
    if (info.state === 'running') out[kind] += tree(info.pid) / TICKS;
  }
  return out;
}
