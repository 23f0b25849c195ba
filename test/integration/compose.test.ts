// `docker compose up`: the same pipeline in containers, on a real engine (on
// machines without Docker, podman behind the Docker API: platform/container/
// engine.sh brings it up). The native platform is stopped first: both serve
// the same host ports, so the host's clients (psql, `npm run status`) reach
// the containers exactly as they reach the native services, with the same
// generated passwords (the credentials service keeps them in .local/credentials).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, ROOT } from '#lib/config.mjs';
import { basicHeader, connectIdentity, pgPassword } from '#lib/credentials.mjs';
import { consumerLag, kafkaAdmin, topicSize } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { rowsLanded as countRows } from '../../bench/lib.mjs';
import { composeContainers, dockerClientEnv } from '../../platform/compose.mjs';
import { CONSUMERS } from '../../platform/container/credentials.mjs';
import { down, up } from '../../platform/lifecycle.mjs';
import {
  cli,
  dist,
  expectedChecksums,
  NO_DIFFERENCE,
  readDataset,
  summariesDifferFromRecompute,
  tableChecksums,
  tempDir,
  until,
} from './helpers.js';

const ROWS = 527_040;
const report: string[] = [];
const rowsLanded = () => countRows(config);

const dockerEnv = () => dockerClientEnv(process.env);

/**
 * Runs a command to its end; its output is kept for the assertion's message.
 * `input` goes to its stdin: how a password reaches a probe without being an argument.
 */
function sh(cmd: string, args: string[], timeoutMs: number, env = dockerEnv(), input?: string) {
  return new Promise<{ code: number | null; out: string; seconds: number }>((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(input ?? '');
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish in ${timeoutMs / 1000} s\n${out.slice(-4000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, seconds: (Date.now() - started) / 1000 });
    });
  });
}
const compose = (args: string[], timeoutMs = 300_000, input?: string) => sh('docker', ['compose', ...args], timeoutMs, dockerEnv(), input);

/** The stack's containers, running or exited, by service. */
async function containerIds() {
  const ps = await compose(['ps', '-a', '--format', '{{.Service}} {{.ID}}']);
  expect(ps.code, ps.out).toBe(0);
  return new Map(
    ps.out
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
}

/** What `docker inspect` shows of a container: its environment and its volumes. */
async function inspect(id: string) {
  const out = await sh('docker', ['inspect', id], 60_000);
  expect(out.code, out.out).toBe(0);
  const [c] = JSON.parse(out.out);
  return {
    env: (c.Config?.Env ?? []) as string[],
    volumes: ((c.Mounts ?? []) as { Type: string; Name?: string; Destination: string }[])
      .filter((m) => m.Type === 'volume')
      .map((m) => String(m.Name).replace(/^kafka-pg-pipeline_/, '')),
  };
}

let expected: ReturnType<typeof expectedChecksums>;
let dir: string;

beforeAll(async () => {
  await down(config);
  if ((await composeContainers(dockerEnv())) === null) {
    const engine = await sh('bash', [path.join(ROOT, 'platform/container/engine.sh')], 900_000, process.env);
    expect(engine.code, engine.out).toBe(0);
  }
  const valid = await compose(['config', '-q']);
  expect(valid.code, valid.out).toBe(0);
  await compose(['down', '-v', '--remove-orphans']);
  // The file the producer container writes for itself: the same seed gives the same bytes.
  dir = tempDir('compose');
  const file = path.join(dir, 'year.parquet');
  const generated = await dist('dataset/generate-cli.js', ['--out', file]).done;
  expect(generated.code, generated.stderr).toBe(0);
  expected = expectedChecksums(await readDataset(file));
}, 1_200_000);

afterAll(async () => {
  await compose(['down', '-v', '--remove-orphans']);
  fs.rmSync(dir, { recursive: true, force: true });
  // The other test files expect the native platform up, as the global setup left it.
  await up(config, { log: () => {} });
  console.log(`\ndocker compose on ${dockerEnv().DOCKER_HOST?.includes('podman') ? 'podman' : 'Docker'}\n${report.join('\n')}`);
}, 600_000);

async function sinkLag() {
  const admin = kafkaAdmin(config);
  try {
    await admin.connect();
    return await consumerLag(admin, config.pipeline.topic, config.sink.group);
  } catch {
    return -1;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Issue 19, item 7: each password only in the containers that use it, none in
 * any container's environment, the admin's only in postgres and init; Connect
 * asks for credentials; psql in the postgres container logs in by itself.
 */
async function expectSecretsWhereTheyBelong() {
  const admin = pgPassword(config, 'admin')!;
  const who = connectIdentity(config)!;
  const passwords = [admin, who.password, ...(['sink', 'etl', 'reader', 'registry'] as const).map((r) => pgPassword(config, r)!)];

  // No password in any container's environment, the exited one-shots included.
  const ids = await containerIds();
  expect([...ids.keys()].sort()).toEqual([
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
  for (const [service, id] of ids) {
    const { env, volumes } = await inspect(id);
    for (const password of passwords) expect(env.join('\n'), `${service}'s environment`).not.toContain(password);
    // Each consumer mounts its own share and no other's (the generator mounts them all).
    const shares = volumes.filter((v) => v.startsWith('secrets-')).sort();
    if (service === 'credentials')
      expect(shares).toEqual(
        Object.keys(CONSUMERS)
          .map((c) => `secrets-${c}`)
          .sort(),
      );
    else expect(shares, service).toEqual(service in CONSUMERS ? [`secrets-${service}`] : []);
  }

  // The admin's password is in the shares of postgres and init only: looked for
  // in every share at once, given on stdin (grep -f), never as an argument.
  const holders = await compose(
    ['run', '--rm', '--no-deps', '-T', 'credentials', 'sh', '-c', 'grep -rlF -f /dev/stdin /secrets | sort'],
    120_000,
    `${admin}\n`,
  );
  expect(holders.out.trim().split('\n')).toEqual([
    '/secrets/init/pg-admin.password',
    '/secrets/postgres/pg-admin.password',
    '/secrets/postgres/pgpass',
  ]);
  // Nor is it anywhere else a running container can read.
  for (const service of ['kafka', 'registry', 'connect', 'watchdog', 'dashboard']) {
    const found = await compose(
      ['exec', '-T', service, 'sh', '-c', 'grep -rlsF -f /dev/stdin /app /opt /tmp /home /etc /var/lib 2>/dev/null; true'],
      120_000,
      `${admin}\n`,
    );
    expect(found.out.trim(), `${service} holds the admin password`).toBe('');
  }

  // The committed default of old is refused; psql in the container needs no password typed.
  const old = pgClient(config, config.pg.database, { user: config.pg.adminUser, password: 'admin_local_only' });
  await expect(old.connect()).rejects.toThrow(/password authentication failed/);
  await old.end().catch(() => {});
  const psql = await compose(['exec', '-T', 'postgres', 'psql', '-U', config.pg.adminUser, '-d', config.pg.database, '-Atc', 'select 1']);
  expect(psql.code, psql.out).toBe(0);
  expect(psql.out.trim()).toBe('1');

  // Connect's REST API: nothing without credentials, from the host as from the compose network.
  const anonymous = await fetch(`${config.connect.url}/connectors`);
  expect(anonymous.status).toBe(401);
  const put = await fetch(`${config.connect.url}/connectors/probe/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ 'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector', topics: 'probe' }),
  });
  expect(put.status).toBe(401);
  const authed = await fetch(`${config.connect.url}/connectors`, { headers: { authorization: basicHeader(who) } });
  expect(authed.status).toBe(200);
  const inside = await compose([
    'exec',
    '-T',
    'connect',
    'bash',
    '-c',
    'exec 3<>/dev/tcp/127.0.0.1/8083; printf "GET /connectors HTTP/1.0\\r\\n\\r\\n" >&3; head -1 <&3',
  ]);
  expect(inside.out).toMatch(/^HTTP\/1\.1 401/);
}

describe('docker compose up', () => {
  it('builds and runs the pipeline; a Connect container killed mid-load loses nothing; every row lands once with its values', async () => {
    const upRun = await compose(['up', '-d', '--build', '--wait'], 1_500_000);
    // When up fails, say why from the containers' own logs (a one-shot
    // container's are gone with `down -v`).
    const logs = upRun.code === 0 ? '' : (await compose(['logs', '--no-color', '--tail', '40', 'init', 'connect'])).out.slice(-6000);
    expect(upRun.code, `${upRun.out.slice(-3000)}\n${logs}`).toBe(0);
    report.push(`up -d --build --wait: ${upRun.seconds.toFixed(0)} s`);
    const started = Date.now();

    // The producer container sends the year; kill Connect once some of it has landed.
    await until(async () => (await rowsLanded()) > 100_000, 600_000, '100,000 rows in PostgreSQL');
    const killed = await compose(['kill', '-s', 'KILL', 'connect']);
    expect(killed.code, killed.out).toBe(0);
    const killedAt = Date.now();
    const back = await compose(['up', '-d', '--wait', 'connect'], 300_000);
    expect(back.code, back.out).toBe(0);
    const before = await rowsLanded();
    await until(async () => (await rowsLanded()) > before || before === ROWS, 300_000, 'rows landing again');
    report.push(
      `Connect killed at ${(await rowsLanded()).toLocaleString('en')} rows; rows landing again after ${((Date.now() - killedAt) / 1000).toFixed(0)} s`,
    );

    await until(async () => (await rowsLanded()) === ROWS && (await sinkLag()) === 0, 600_000, `${ROWS} rows and sink lag 0`);
    report.push(`full year landed ${((Date.now() - started) / 1000).toFixed(0)} s after up returned`);
    const producer = await compose(['ps', '-a', '--format', '{{.Service}} {{.State}} {{.Status}}']);
    expect(producer.out).toMatch(/^producer exited Exited \(0\)/m);

    const db = pgClient(config);
    await db.connect();
    try {
      expect(await tableChecksums(db)).toEqual(expected);
      const admin = kafkaAdmin(config);
      await admin.connect();
      try {
        expect(await topicSize(admin, config.pipeline.topic)).toBe(ROWS);
        expect(await topicSize(admin, config.pipeline.dlqTopic)).toBe(0);
      } finally {
        await admin.disconnect();
      }
      // pg_cron inside the postgres container keeps the summaries: nobody runs the ETL here.
      const fresh = await until(
        async () => JSON.stringify(await summariesDifferFromRecompute(db)) === JSON.stringify(NO_DIFFERENCE),
        240_000,
        'pg_cron to bring the summaries to a full recompute',
      ).catch(() => false);
      expect(fresh ? NO_DIFFERENCE : await summariesDifferFromRecompute(db)).toEqual(NO_DIFFERENCE);
    } finally {
      await db.end();
    }

    // After the load, so that the probes do not delay the kill of Connect mid-load.
    await expectSecretsWhereTheyBelong();

    // The host's own commands read the stack, and the native platform will not start beside it.
    const status = await cli('status.mjs', [], {}, 90_000);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toMatch(/docker compose logs connect/);
    expect(status.stdout).toMatch(/all parts up/);
    const native = await cli('platform.mjs', ['up'], {}, 60_000);
    expect(native.code).toBe(1);
    expect(native.stderr.trim().split('\n')).toHaveLength(1);
    expect(native.stderr).toMatch(/the compose stack kafka-pg-pipeline is running .*docker compose down/);
  }, 2_400_000);

  it('down keeps the data and up resumes without a duplicate; down -v clears it', async () => {
    const landed = async () => {
      const db = pgClient(config);
      await db.connect();
      try {
        return (await db.query('select count(*)::int as n, max(ingested_at)::text as last from synthetic_data')).rows[0];
      } finally {
        await db.end();
      }
    };
    const before = await landed();
    expect(before.n).toBe(ROWS);
    expect((await compose(['down'])).code).toBe(0);
    const again = await compose(['up', '-d', '--wait'], 600_000);
    expect(again.code, again.out.slice(-4000)).toBe(0);
    await until(async () => (await rowsLanded()) === ROWS, 120_000, 'the rows kept');
    // The producer found its file sent: nothing goes to Kafka twice.
    await until(
      async () => /producer exited Exited \(0\)/.test((await compose(['ps', '-a', '--format', '{{.Service}} {{.State}} {{.Status}}'])).out),
      300_000,
      'the producer to finish',
    );
    const admin = kafkaAdmin(config);
    await admin.connect();
    try {
      expect(await topicSize(admin, config.pipeline.topic)).toBe(ROWS);
    } finally {
      await admin.disconnect();
    }
    // Not one row written again: the newest landing is the one before down.
    expect(await landed()).toEqual(before);

    expect((await compose(['down', '-v'])).code).toBe(0);
    const volumes = await sh('docker', ['volume', 'ls', '--format', '{{.Name}}'], 60_000);
    expect(volumes.out.split('\n').filter((v) => v.startsWith('kafka-pg-pipeline_'))).toEqual([]);
  }, 1_200_000);
});
