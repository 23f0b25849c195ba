// `docker compose up`: the same pipeline in containers, on a real engine (on
// machines without Docker, podman behind the Docker API: platform/container/
// engine.sh brings it up). The native platform is stopped first: both serve
// the same host ports, so the host's clients (psql, `npm run status`) reach
// the containers exactly as they reach the native services.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, ROOT } from '#lib/config.mjs';
import { consumerLag, kafkaAdmin, topicSize } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { rowsLanded as countRows } from '../../bench/lib.mjs';
import { composeContainers, dockerClientEnv } from '../../platform/compose.mjs';
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

/** Runs a command to its end; its output is kept for the assertion's message. */
function sh(cmd: string, args: string[], timeoutMs: number, env = dockerEnv()) {
  return new Promise<{ code: number | null; out: string; seconds: number }>((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
const compose = (args: string[], timeoutMs = 300_000) => sh('docker', ['compose', ...args], timeoutMs);

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
