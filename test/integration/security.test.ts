// Secure by default, tried as a user (or another account on the host) would:
// no committed password opens anything, Connect's REST API asks for
// credentials, state folders are closed, role passwords travel as verifiers.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, loadConfig, ROOT } from '#lib/config.mjs';
import { basicHeader, connectIdentity, credentialFile, credentialsDir, pgPassword } from '#lib/credentials.mjs';
import { pgClient, withPg } from '#lib/pg.mjs';
import { freePortRange } from '#lib/procs.mjs';
import { migrate } from '../../ops/migrate.mjs';
import { LEGACY_ADMIN_PASSWORD, pgServiceGid, postgresService } from '../../platform/postgres.mjs';
import { cli, pipelineReady, tempDir, uniqueName } from './helpers.js';

/** What .env committed until now: none of it may open anything. */
const COMMITTED = {
  [config.pg.adminUser]: LEGACY_ADMIN_PASSWORD,
  pipeline_sink: 'sink_local_only',
  pipeline_etl: 'etl_local_only',
  pipeline_reader: 'reader_local_only',
  [config.registry.user]: 'registry_local_only',
};

/** Logs in over TCP as psql would; the error's SQLSTATE, or 'ok'. */
async function tryLogin(user: string, password: string | undefined, database = config.pg.database) {
  const client = new pg.Client({ host: config.pg.host, port: config.pg.port, user, password, database, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? (err as Error).message);
  } finally {
    await client.end().catch(() => {});
  }
}

const connect = (route: string, init: RequestInit = {}) =>
  fetch(`${config.connect.url}${route}`, { ...init, signal: AbortSignal.timeout(10_000) });
const mode = (file: string) => fs.statSync(file).mode & 0o777;

beforeAll(pipelineReady, 300_000);

describe('no committed or guessable password', () => {
  it('refuses every password .env used to commit, and takes the generated ones', async () => {
    for (const [user, password] of Object.entries(COMMITTED)) {
      const database = user === config.registry.user ? config.registry.database : config.pg.database;
      expect(await tryLogin(user, password, database), `${user} with its old committed password`).toBe('28P01');
    }
    for (const who of ['admin', 'sink', 'etl', 'reader'] as const) {
      const user = who === 'admin' ? config.pg.adminUser : config.pg.roles[who].user;
      expect(await tryLogin(user, pgPassword(config, who)), user).toBe('ok');
    }
    expect(await tryLogin(config.registry.user, pgPassword(config, 'registry'), config.registry.database)).toBe('ok');
    // Nothing in .env names a password; the generated ones are long and all different.
    expect(fs.readFileSync(path.join(ROOT, '.env'), 'utf8')).not.toMatch(/^[A-Z_]*PASSWORD=/m);
    const generated = fs.readdirSync(credentialsDir(config)).filter((f) => f.endsWith('.password'));
    expect(generated).toEqual(
      expect.arrayContaining(['pg-admin.password', 'pg-sink.password', 'pg-registry.password', 'connect-admin.password']),
    );
    const values = generated.map((f) => fs.readFileSync(path.join(credentialsDir(config), f), 'utf8').trim());
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v.length).toBeGreaterThanOrEqual(32);
  });

  it('npm run psql logs in with them, as the admin or as a role, with no password on its command line', async () => {
    const admin = spawnSync(process.execPath, [path.join(ROOT, 'scripts/psql.mjs'), '-Atc', 'select current_user'], { encoding: 'utf8' });
    expect(admin.stderr).toBe('');
    expect(admin.stdout.trim()).toBe(config.pg.adminUser);
    const reader = spawnSync(
      process.execPath,
      [path.join(ROOT, 'scripts/psql.mjs'), '-U', 'pipeline_reader', '-Atc', 'select current_user'],
      {
        encoding: 'utf8',
      },
    );
    expect(reader.stdout.trim()).toBe('pipeline_reader');
    const pgpass = fs.readFileSync(path.join(credentialsDir(config), 'pgpass'), 'utf8');
    expect(pgpass).toContain(`:${config.pg.port}:*:pipeline_reader:`);
    expect(mode(path.join(credentialsDir(config), 'pgpass'))).toBe(0o600);
  });
});

describe('Connect REST asks for credentials', () => {
  const sinkBody = () => JSON.parse(fs.readFileSync(path.join(ROOT, 'connect', `${config.sink.connector}.json`), 'utf8'));

  it('answers an anonymous call with 401, whatever it asks', async () => {
    expect((await connect('/connectors')).status).toBe(401);
    expect((await connect(`/connectors/${config.sink.connector}/config`)).status).toBe(401);
    expect((await connect('/admin/loggers')).status).toBe(401);
    const probe = uniqueName('probe');
    // The attack of issue 19: a sink pointed at a port of the caller's choosing, with the sink's secret.
    const put = await connect(`/connectors/${probe}/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...sinkBody(), 'connection.url': 'jdbc:postgresql://127.0.0.1:1/x', topics: probe }),
    });
    expect(put.status).toBe(401);
    const loggers = await connect('/admin/loggers/root', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ level: 'TRACE' }),
    });
    expect(loggers.status).toBe(401);
    // A wrong password is no better than none.
    const wrong = await connect('/connectors', { headers: { authorization: basicHeader({ username: 'admin', password: 'admin' }) } });
    expect(wrong.status).toBe(401);
    // A page that rebinds a name to 127.0.0.1 sends its own Host and no credentials.
    const rebound = spawnSync(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: rebind.attacker.test', `${config.connect.url}/connectors`],
      {
        encoding: 'utf8',
      },
    );
    expect(rebound.stdout).toBe('401');
    const list = await connect('/connectors', { headers: { authorization: basicHeader(connectIdentity(config)!) } });
    expect(await list.json()).not.toContain(probe);
  });

  it('takes a connector from the user with the credentials, as our scripts send them', async () => {
    const probe = uniqueName('probe');
    const auth = { authorization: basicHeader(connectIdentity(config)!), 'content-type': 'application/json' };
    const body = { ...sinkBody(), topics: probe, 'tasks.max': '1' };
    try {
      const put = await connect(`/connectors/${probe}/config`, { method: 'PUT', headers: auth, body: JSON.stringify(body) });
      expect(put.status).toBe(201);
    } finally {
      await connect(`/connectors/${probe}`, { method: 'DELETE', headers: auth });
    }
    // The curl recipe the README shows.
    const curl = spawnSync('curl', ['-s', '-K', path.join(credentialsDir(config), 'connect.curlrc'), `${config.connect.url}/connectors`], {
      encoding: 'utf8',
    });
    expect(JSON.parse(curl.stdout)).toContain(config.sink.connector);
  });
});

describe('state closed to other accounts', () => {
  it('keeps STATE_DIR, its folders and every log and data file from other accounts', () => {
    const gid = pgServiceGid();
    for (const dir of [config.stateDir, config.dataDir, config.logDir, config.runDir]) {
      // 0700; as root, PostgreSQL's group may pass through (search only).
      expect(mode(dir), dir).toBe(gid === undefined ? 0o700 : 0o710);
      if (gid !== undefined) expect(fs.statSync(dir).gid, dir).toBe(gid);
    }
    expect(mode(credentialsDir(config))).toBe(0o700);
    const open: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isSymbolicLink()) continue;
        if ((mode(file) & 0o007) !== 0) open.push(`${file} ${mode(file).toString(8)}`);
        if (entry.isDirectory()) walk(file);
      }
    };
    for (const dir of [config.logDir, config.dataDir, credentialsDir(config)]) walk(dir);
    expect(open).toEqual([]);
    for (const f of fs.readdirSync(credentialsDir(config))) expect(mode(path.join(credentialsDir(config), f)), f).toBe(0o600);
    // Kafka's own files (its segments hold rows and dead letters) were made closed, not only hidden.
    const kafkaFiles = fs.readdirSync(path.join(config.dataDir, 'kafka'), { recursive: true }) as string[];
    expect(kafkaFiles.length).toBeGreaterThan(5);
  });
});

describe('role passwords', () => {
  let logStart = 0;
  const pgLog = path.join(config.logDir, 'postgres.log');
  beforeAll(async () => {
    logStart = fs.statSync(pgLog).size;
    await withPg(config, 'admin', (db) => db.query(`ALTER DATABASE ${db.escapeIdentifier(config.pg.database)} SET log_statement = 'ddl'`));
  });
  afterAll(async () => {
    await withPg(config, 'admin', (db) => db.query(`ALTER DATABASE ${db.escapeIdentifier(config.pg.database)} RESET log_statement`));
    // The local roles back on their generated passwords.
    await migrate(config);
  });

  it('on an external database: only a given password is set, as a verifier; a role without one is left alone', async () => {
    const verifiers = async () =>
      Object.fromEntries(
        (
          await withPg(config, 'admin', (db) =>
            db.query("select rolname, rolpassword from pg_authid where rolname in ('pipeline_sink', 'pipeline_etl', 'pipeline_reader')"),
          )
        ).rows.map((r) => [r.rolname, r.rolpassword]),
      );
    const before = await verifiers();
    const given = `given-${uniqueName('pw')}`;
    const external = loadConfig(ROOT, {
      ...process.env,
      PLATFORM: 'external',
      KAFKA_BOOTSTRAP_SERVERS: config.kafka.bootstrap,
      SCHEMA_REGISTRY_URL: config.registry.ccompatUrl,
      CONNECT_URL: config.connect.url,
      PG_ADMIN_PASSWORD: pgPassword(config, 'admin'),
      PG_SINK_PASSWORD: given,
    });
    await migrate(external);
    const after = await verifiers();
    expect(after.pipeline_etl).toBe(before.pipeline_etl);
    expect(after.pipeline_reader).toBe(before.pipeline_reader);
    expect(after.pipeline_sink).not.toBe(before.pipeline_sink);
    expect(after.pipeline_sink).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(await tryLogin('pipeline_sink', given)).toBe('ok');
    // The server logged the statement (log_statement=ddl), with the verifier, never the password.
    const log = fs.readFileSync(pgLog, 'utf8').slice(logStart);
    expect(log).toMatch(/ALTER ROLE "pipeline_sink" PASSWORD 'SCRAM-SHA-256\$/);
    expect(log).not.toContain(given);
  });
});

describe('a cluster made with the committed default', () => {
  let state: string;
  let port: number;
  const at = (env: Record<string, string>) =>
    loadConfig(ROOT, {
      ...process.env,
      STATE_DIR: state,
      PG_PORT: String(port),
      KAFKA_PORT: String(port + 2),
      KAFKA_CONTROLLER_PORT: String(port + 3),
      ...env,
    });
  beforeAll(async () => {
    state = tempDir('legacy-pg');
    port = await freePortRange(4);
  });
  afterAll(async () => {
    await postgresService(at({})).stop();
    fs.rmSync(state, { recursive: true, force: true });
  });

  const start = async (c: ReturnType<typeof at>) => {
    const svc = postgresService(c);
    if (svc.pid().state !== 'running') await svc.start();
    const deadline = Date.now() + 60_000;
    while (!(await svc.ready())) {
      if (Date.now() > deadline) throw new Error('postgres not ready');
      await new Promise((r) => setTimeout(r, 250));
    }
    await svc.afterReady?.();
  };

  it('moves to a generated admin password on its next start; the old one no longer opens it', async () => {
    // How clusters were made until now: the admin password from .env.
    await start(at({ PG_ADMIN_PASSWORD: LEGACY_ADMIN_PASSWORD }));
    const now = at({});
    expect(fs.existsSync(credentialFile(now, 'pg-admin'))).toBe(false);
    await start(now);
    const generated = pgPassword(now, 'admin')!;
    expect(generated).not.toBe(LEGACY_ADMIN_PASSWORD);
    const login = async (password: string) => {
      const c = pgClient({ ...now, pg: { ...now.pg, adminPassword: password } }, 'postgres');
      try {
        await c.connect();
        return 'ok';
      } catch (err) {
        return (err as { code?: string }).code;
      } finally {
        await c.end().catch(() => {});
      }
    };
    expect(await login(generated)).toBe('ok');
    expect(await login(LEGACY_ADMIN_PASSWORD)).toBe('28P01');
  }, 120_000);

  it('refuses in one line a cluster whose admin password it does not know', async () => {
    const lost = at({});
    fs.writeFileSync(credentialFile(lost, 'pg-admin'), 'not-the-password\n', { mode: 0o600 });
    await expect(postgresService(lost).ready()).rejects.toThrow(
      /refused the admin password .*set PG_ADMIN_PASSWORD to the one the cluster was made with, or start over/,
    );
  });
});

describe('.env values', () => {
  it('refuses a line break in a value before anything is rendered, in one line', async () => {
    const res = await cli('status.mjs', [], { PG_DATABASE: "kafka_data'\nshared_preload_libraries = 'evil" });
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toMatch(/^error: PG_DATABASE holds a line break or control character: set it on one line/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });
});
