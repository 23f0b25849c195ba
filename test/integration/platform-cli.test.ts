// Bad input to `platform:*`: each case ends in one line that names the cause
// and the fix, never a hang, never a stack trace, never a silent success.
// Each case runs in a throw-away STATE_DIR (and CACHE_DIR where it fetches), so
// the running platform is left alone.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { isAlive } from '#lib/procs.mjs';
import { cli, freePort, tempDir } from './helpers.js';

const dirs: string[] = [];
const scratch = (prefix: string) => {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Every port moved to a free one, so a scratch platform never meets the real one. */
async function freePorts() {
  return {
    PG_PORT: String(await freePort()),
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    REGISTRY_PORT: String(await freePort()),
    REGISTRY_MANAGEMENT_PORT: String(await freePort()),
    CONNECT_PORT: String(await freePort()),
    DASHBOARD_PORT: String(await freePort()),
  };
}

const oneLineError = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0];
};

describe('platform:up refuses', () => {
  it('a port already taken by another program, naming the key to change', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const res = await cli('platform.mjs', ['up'], { ...(await freePorts()), STATE_DIR: scratch('port'), PG_PORT: String(port) }, 30_000);
      expect(res.code).toBe(1);
      expect(oneLineError(res.stderr)).toMatch(
        new RegExp(`postgres: port ${port} is already taken by .*: stop it, or set PG_PORT to a free port`),
      );
    } finally {
      server.close();
    }
  });

  it('a data folder of another PostgreSQL version, before starting anything', async () => {
    const state = scratch('pgversion');
    fs.mkdirSync(path.join(state, 'data', 'postgres'), { recursive: true });
    fs.writeFileSync(path.join(state, 'data', 'postgres', 'PG_VERSION'), '14\n');
    const res = await cli('platform.mjs', ['up'], { ...(await freePorts()), STATE_DIR: state }, 30_000);
    expect(res.code).toBe(1);
    expect(oneLineError(res.stderr)).toMatch(/holds a PostgreSQL 14 cluster, this project runs 15: .*platform:down -- --purge/);
    expect(fs.existsSync(path.join(state, 'run', 'kafka.pid'))).toBe(false);
  });

  it('a Kafka log folder formatted for another node', async () => {
    const state = scratch('kafkameta');
    fs.mkdirSync(path.join(state, 'data', 'kafka'), { recursive: true });
    fs.writeFileSync(path.join(state, 'data', 'kafka', 'meta.properties'), 'version=1\nnode.id=7\ncluster.id=abc\n');
    const res = await cli('platform.mjs', ['up'], { ...(await freePorts()), STATE_DIR: state }, 30_000);
    expect(res.code).toBe(1);
    expect(oneLineError(res.stderr)).toMatch(/formatted for another Kafka node or version \(node\.id=7\)/);
  });
});

describe('stale pid files', () => {
  it('are reported by status and removed by down without touching the process now behind the pid', async () => {
    const state = scratch('stale');
    fs.mkdirSync(path.join(state, 'run'), { recursive: true });
    // The test runner itself: alive, but not one of ours.
    fs.writeFileSync(path.join(state, 'run', 'kafka.pid'), `${process.pid}\n`);
    fs.writeFileSync(path.join(state, 'run', 'connect.pid'), '999999999\n');
    const env = { ...(await freePorts()), STATE_DIR: state };

    const status = await cli('platform.mjs', ['status'], env, 30_000);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(new RegExp(`kafka .*down \\(stale pid: pid ${process.pid} now belongs to another program\\)`));
    expect(status.stdout).toMatch(/connect .*down \(stale pid: process 999999999 is gone\)/);

    const down = await cli('platform.mjs', ['down'], env, 30_000);
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/kafka\s+stale pid file removed/);
    expect(isAlive(process.pid)).toBe(true);
    expect(fs.existsSync(path.join(state, 'run', 'kafka.pid'))).toBe(false);
  });
});

describe('platform:fetch', () => {
  it('says which prerequisite is missing: Maven', async () => {
    const res = await cli(
      'platform.mjs',
      ['fetch'],
      { CACHE_DIR: scratch('nomvn'), STATE_DIR: scratch('nomvn-state'), PATH: '/nonexistent' },
      30_000,
    );
    expect(res.code).toBe(1);
    expect(oneLineError(res.stderr)).toMatch(/Maven is not installed: run `apt-get install -y maven`/);
  });

  it('says which prerequisite is missing: Java, or Java too old', async () => {
    const cache = scratch('nojava');
    const res = await cli(
      'platform.mjs',
      ['fetch'],
      { CACHE_DIR: cache, STATE_DIR: scratch('nojava-state'), JAVA_HOME: '/nonexistent' },
      30_000,
    );
    expect(res.code).toBe(1);
    expect(oneLineError(res.stderr)).toMatch(/Java is not installed: run `apt-get install -y openjdk-17-jdk-headless`/);

    const oldJdk = scratch('oldjdk');
    fs.mkdirSync(path.join(oldJdk, 'bin'));
    fs.writeFileSync(path.join(oldJdk, 'bin', 'java'), '#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n', { mode: 0o755 });
    const old = await cli('platform.mjs', ['fetch'], { CACHE_DIR: cache, STATE_DIR: scratch('oldjava-state'), JAVA_HOME: oldJdk }, 30_000);
    expect(old.code).toBe(1);
    expect(oneLineError(old.stderr)).toMatch(/Java 11 at .* is too old: .*needs Java 17\+/);
  });

  it('downloads nothing the second time, and fetches again when a cached file was truncated', async () => {
    const cache = scratch('cache');
    const env = { CACHE_DIR: cache, STATE_DIR: scratch('cache-state') };
    // The real cache already filled Maven's repository: this copy downloads nothing.
    const first = await cli('platform.mjs', ['fetch'], env);
    expect(first.code, first.stderr).toBe(0);
    const log = fs.readFileSync(path.join(env.STATE_DIR, 'logs', 'fetch.log'), 'utf8');
    expect(log).not.toMatch(/Downloaded from/);

    const again = await cli('platform.mjs', ['fetch'], env);
    expect(again.stdout).toMatch(/platform cache up to date: nothing to fetch/);

    const libs = path.join(cache, 'kafka', 'libs');
    const jar = fs.readdirSync(libs).find((name) => name.startsWith('kafka-clients-'))!;
    const size = fs.statSync(path.join(libs, jar)).size;
    fs.truncateSync(path.join(libs, jar), 1000);
    const repaired = await cli('platform.mjs', ['fetch'], env);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toContain(`the cache is damaged: kafka/libs/${jar} has 1000 bytes, not ${size}: fetching again`);
    expect(fs.statSync(path.join(libs, jar)).size).toBe(size);
  });
});

describe('the real platform', () => {
  it('is what status reports as ready', async () => {
    const res = await cli('platform.mjs', ['status'], {}, 30_000);
    expect(res.code, res.stdout).toBe(0);
    for (const name of ['postgres', 'kafka', 'registry', 'connect', 'watchdog', 'dashboard'])
      expect(res.stdout).toMatch(new RegExp(`${name} .* ready`));
    expect(res.stdout).toContain(config.registry.ccompatUrl);
  });
});
