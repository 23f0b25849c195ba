import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '#lib/config.mjs';
import { CONSUMERS, generate, hostRecipes, pgpassLine, readPassword, SECRETS, volumeFiles } from './credentials.mjs';

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const compose = read('docker-compose.yml');
const dockerfile = read('platform/container/Dockerfile');

/** docker-compose.yml's services, each as its block of text. */
const services = Object.fromEntries(
  compose
    .slice(compose.indexOf('\nservices:\n'), compose.indexOf('\nvolumes:\n'))
    .split(/\n(?= {2}[a-z-]+:\n)/)
    .slice(1)
    .map((block) => [/^ {2}([a-z-]+):/.exec(block)![1], block]),
);
const passwords = Object.fromEntries(SECRETS.map((name) => [name, `${name}-secret`])) as Record<(typeof SECRETS)[number], string>;

describe('the credentials service’s shares', () => {
  it('give the admin password to postgres and init only, and the producer nothing', () => {
    expect(Object.keys(services).sort()).toEqual([
      'connect',
      'credentials',
      'dashboard',
      'init',
      'kafka',
      'postgres',
      'producer',
      'registry',
      'watchdog',
    ]);
    const holders = Object.entries(CONSUMERS).filter(([, c]) => c.secrets.includes('pg-admin'));
    expect(holders.map(([name]) => name).sort()).toEqual(['init', 'postgres']);
    expect(services.producer).not.toMatch(/secrets-/);
    expect(services.kafka).not.toMatch(/secrets-/);
  });

  it('are each mounted read-only by its own service only, where that service’s code reads them', () => {
    const readers: Record<string, string> = {
      postgres: read('platform/container/postgres.sh'),
      registry: dockerfile,
      connect: read('platform/container/jvm.sh'),
      init: '/app/.local/credentials',
      watchdog: '/app/.local/credentials',
      dashboard: '/app/.local/credentials',
    };
    for (const [service, block] of Object.entries(services)) {
      const mounted = [...block.matchAll(/secrets-([a-z]+):([^\s\]]+)/g)];
      if (service === 'credentials') {
        expect(mounted.map((m) => m[1]).sort()).toEqual(Object.keys(CONSUMERS).sort());
        continue;
      }
      expect(
        mounted.map((m) => m[1]),
        service,
      ).toEqual(service in CONSUMERS ? [service] : []);
      for (const [, , target] of mounted) {
        expect(target).toMatch(/:ro$/);
        expect(readers[service]).toContain(target.replace(/:ro$/, ''));
      }
    }
  });

  it('are owned by the uid each service’s image runs as', () => {
    const uids = Object.fromEntries(
      [...dockerfile.matchAll(/useradd --system --uid (\d+) --create-home (\w+)/g)].map((m) => [m[2], Number(m[1])]),
    );
    uids.postgres = Number(/id -u postgres\)" = (\d+)/.exec(dockerfile)![1]);
    for (const [service, consumer] of Object.entries(CONSUMERS)) {
      const block = services[service];
      const image = /<<: \*app/.test(block) ? 'app' : /target: (\w+)/.exec(block)![1];
      expect(uids[image], `${service} runs the ${image} image`).toBe(consumer.uid);
    }
  });

  it('leave no password in any environment and no env_file handing .env to every container', () => {
    expect(compose).not.toMatch(/^\s*env_file:/m);
    expect(compose).not.toMatch(/^\s+\w*PASSWORD\w*:/m);
  });
});

describe('the files', () => {
  it('escape pgpass fields as libpq reads them', () => {
    expect(pgpassLine(['*', '*', '*', 'admin', 'a:b\\c'])).toBe('*:*:*:admin:a\\:b\\\\c\n');
  });

  it('give postgres a pgpass for its own socket and the host one for the published port', () => {
    expect(volumeFiles(CONSUMERS.postgres, passwords, { pgAdminUser: 'admin' })).toEqual({
      'pg-admin.password': 'pg-admin-secret\n',
      'pg-registry.password': 'pg-registry-secret\n',
      pgpass: '*:*:*:admin:pg-admin-secret\n',
    });
    const host = hostRecipes(passwords, { pgAdminUser: 'admin', pgPort: '5433' });
    expect(host.pgpass.split('\n')).toContain('127.0.0.1:5433:*:pipeline_reader:pg-reader-secret');
    expect(host['connect.curlrc']).toBe('user = "admin:connect-admin-secret"\n');
  });

  it('refuse a password file that is not one line', () => {
    expect(readPassword('f', 'secret\n')).toBe('secret');
    expect(() => readPassword('f', '\n')).toThrow(/one password on one line/);
    expect(() => readPassword('f', 'a\nb\n')).toThrow(/one password on one line/);
  });
});

describe('generate', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  // As the owner of the files (not root), so chown to another uid is not tried:
  // the consumers' uids are the test runner's own here.
  it('makes what is missing once, keeps what exists, and removes what a share should not hold', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'credentials-'));
    dirs.push(root);
    const me = process.getuid?.() ?? 0;
    const consumers = Object.fromEntries(Object.entries(CONSUMERS).map(([name, c]) => [name, { ...c, uid: me }]));
    const state = path.join(root, 'state');
    fs.mkdirSync(state);
    fs.mkdirSync(path.join(state, 'credentials'), { mode: 0o755 });
    fs.writeFileSync(path.join(state, 'credentials', 'pg-admin.password'), 'kept\n');
    for (const name of Object.keys(CONSUMERS)) fs.mkdirSync(path.join(root, 'secrets', name), { recursive: true });
    fs.writeFileSync(path.join(root, 'secrets', 'dashboard', 'pg-admin.password'), 'stray\n');
    const where = { project: root, state, secrets: path.join(root, 'secrets'), pgAdminUser: 'admin', pgPort: '5433', consumers };

    generate(where);
    const creds = path.join(state, 'credentials');
    expect(fs.statSync(creds).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(path.join(creds, 'pg-admin.password'), 'utf8')).toBe('kept\n');
    const sink = fs.readFileSync(path.join(creds, 'pg-sink.password'), 'utf8');
    expect(sink).toMatch(/^[\w-]{32}\n$/);
    expect(fs.statSync(path.join(creds, 'pg-sink.password')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(root, 'secrets', 'dashboard')).sort()).toEqual(['connect-admin.password', 'pg-reader.password']);
    expect(fs.readFileSync(path.join(root, 'secrets', 'connect', 'pg-sink.password'), 'utf8')).toBe(sink);
    expect(fs.statSync(path.join(root, 'secrets', 'connect', 'pg-sink.password')).mode & 0o777).toBe(0o400);
    expect(fs.readFileSync(path.join(root, 'secrets', 'init', 'pg-admin.password'), 'utf8')).toBe('kept\n');

    generate(where);
    expect(fs.readFileSync(path.join(creds, 'pg-sink.password'), 'utf8')).toBe(sink);
  });
});
