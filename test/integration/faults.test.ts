// Faults during a full-year load: each ends with exactly 527,040 distinct rows,
// nothing in the dead letter queue for it, and summaries equal to a full
// recompute. Each test empties the pipeline first and leaves it loaded.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, loadConfig, ROOT } from '#lib/config.mjs';
import { connectApi } from '#lib/connect.mjs';
import { connectIdentity, pgPassword } from '#lib/credentials.mjs';
import { kafkaAdmin, topicSize } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { isAlive, readText, stopPid } from '#lib/procs.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { migrate } from '../../ops/migrate.mjs';
import { services, up } from '../../platform/lifecycle.mjs';
import { resetPipeline, waitLoaded } from '../../bench/lib.mjs';
import {
  dist,
  expectedChecksums,
  NO_DIFFERENCE,
  readDataset,
  SINK_TASKS,
  summariesDifferFromRecompute,
  tableChecksums,
  tempDir,
  until,
} from './helpers.js';

const ROWS = 527_040;
// A producer killed mid-run resends what Kafka had not acknowledged: at most
// the chunks in flight.
const MAX_RESENT = 4 * config.producer.chunkRows;
const report: string[][] = [];
let expected: ReturnType<typeof expectedChecksums>;
let db = pgClient(config);
const admin = kafkaAdmin(config);

beforeAll(async () => {
  await up(config, { log: () => {} });
  await migrate(config);
  await db.connect();
  await admin.connect();
  // The dataset the faults interrupt.
  await dist('dataset/generate-cli.js', ['--out', config.datasetFile]).done;
  expected = expectedChecksums(await readDataset(config.datasetFile));
}, 120_000);

afterAll(async () => {
  await db.end();
  await admin.disconnect();
  console.log(
    `\nfaults during a full-year load\n${['fault', 'expected', 'found', 'records in Kafka', 'duplicates in Kafka', 'dead letters', 'values equal the file', 'seconds to recover'].join(' | ')}\n${report.map((r) => r.join(' | ')).join('\n')}`,
  );
});

const rowsLanded = async () => Number((await db.query('select count(*)::int as n from synthetic_data')).rows[0].n);
const pidOf = (name: string) => Number(readText(path.join(config.runDir, `${name}.pid`)));

/** Starts the full-year load, runs `fault` once some rows have landed, then checks the invariants. */
async function loadThrough(name: string, fault: () => Promise<{ recovered: () => Promise<void> } | void>, { resends = false } = {}) {
  await resetPipeline(config);
  const dlqBefore = await topicSize(admin, config.pipeline.dlqTopic);
  let producer = dist('producer/cli.js', ['--file', config.datasetFile], {}, 600_000);
  await until(async () => (await rowsLanded()) > 100_000, 120_000, '100,000 rows before the fault');
  const faultAt = Date.now();
  const outcome = await fault();
  // Recovered once rows land again after the fault.
  const before = await rowsLanded();
  await until(async () => (await rowsLanded()) > before || before === ROWS, 180_000, 'rows landing again');
  const recoverySeconds = (Date.now() - faultAt) / 1000;
  await outcome?.recovered();
  let res = await producer.done;
  if (res.signal === 'SIGKILL') {
    // The producer itself was the fault: run it again, as a user would.
    producer = dist('producer/cli.js', ['--file', config.datasetFile], {}, 600_000);
    res = await producer.done;
    expect(res.stderr).toMatch(/resuming at row/);
  }
  expect(res.code, res.stderr).toBe(0);
  await waitLoaded(config, ROWS, 300_000);

  const {
    rows: [r],
  } = await db.query('select count(*)::int as n, min(id)::int as lo, max(id)::int as hi from synthetic_data');
  const dead = (await topicSize(admin, config.pipeline.dlqTopic)) - dlqBefore;
  // The topic was emptied first: every record beyond the file's rows is one sent twice.
  const inKafka = await topicSize(admin, config.pipeline.topic);
  const checksums = await tableChecksums(db);
  const same = JSON.stringify(checksums) === JSON.stringify(expected);
  report.push([
    name,
    String(ROWS),
    String(r.n),
    String(inKafka),
    String(inKafka - ROWS),
    String(dead),
    String(same),
    recoverySeconds.toFixed(1),
  ]);
  expect(r).toEqual({ n: ROWS, lo: 1, hi: ROWS });
  expect(checksums).toEqual(expected);
  expect(dead).toBe(0);
  expect(inKafka).toBeGreaterThanOrEqual(ROWS);
  expect(inKafka - ROWS).toBeLessThanOrEqual(resends ? MAX_RESENT : 0);
  await runEtl(config);
  await expectSummariesEqualRecompute();
}

async function expectSummariesEqualRecompute() {
  expect(await summariesDifferFromRecompute(db)).toEqual(NO_DIFFERENCE);
}

/** Stops PostgreSQL for `downMs`, then brings it back as `npm start` would, and reconnects. */
async function stopPostgres(downMs: number) {
  const postgres = services(config).find((s) => s.name === 'postgres')!;
  await db.end().catch(() => {});
  await postgres.stop();
  await new Promise((resolve) => setTimeout(resolve, downMs));
  await up(config, { log: () => {} });
  db = pgClient(config);
  await db.connect();
}

/** SIGKILL a service of the platform, then bring it back as `npm start` would. */
async function killAndRestart(name: 'connect' | 'kafka') {
  const pid = pidOf(name);
  process.kill(pid, 'SIGKILL');
  await until(async () => !isAlive(pid), 10_000, `${name} gone`);
  await up(config, { log: () => {} });
}

describe('faults during a full-year load', () => {
  it('the Connect worker killed with SIGKILL, then restarted', async () => {
    await loadThrough('Connect worker SIGKILL', () => killAndRestart('connect'));
  }, 600_000);

  it('the Kafka broker killed with SIGKILL, then restarted', async () => {
    await loadThrough('Kafka broker SIGKILL', () => killAndRestart('kafka'));
  }, 600_000);

  it('PostgreSQL restarted', async () => {
    await loadThrough('PostgreSQL restart', () => stopPostgres(0));
  }, 600_000);

  it('PostgreSQL down for 4 minutes', async () => {
    await loadThrough('PostgreSQL down 4 min', () => stopPostgres(240_000));
  }, 900_000);

  it('the Kafka broker frozen (SIGSTOP) for 6 minutes', async () => {
    await loadThrough('Kafka broker SIGSTOP 6 min', async () => {
      const pid = pidOf('kafka');
      process.kill(pid, 'SIGSTOP');
      try {
        await new Promise((resolve) => setTimeout(resolve, 360_000));
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    });
  }, 1_200_000);

  it('the producer killed with SIGKILL and run again', async () => {
    const file = config.datasetFile;
    await loadThrough(
      'producer SIGKILL',
      async () => {
        process.kill(await findProducerPid(file), 'SIGKILL');
      },
      { resends: true },
    );
  }, 600_000);

  it('two Connect workers in one group, one killed: its tasks move to the other', async () => {
    // A second worker of the same group on its own port and state folder.
    const stateDir = tempDir('worker2');
    const port = 18_083;
    // A worker of the group shares its secrets: the REST user's, and the sink's for the tasks it takes over.
    const shared = { CONNECT_PASSWORD: connectIdentity(config)!.password, PG_SINK_PASSWORD: pgPassword(config, 'sink')! };
    const second = services(loadConfig(ROOT, { ...process.env, ...shared, STATE_DIR: stateDir, CONNECT_PORT: String(port) })).find(
      (s) => s.name === 'connect',
    )!;
    await second.start();
    await until(async () => second.ready(), 60_000, 'the second worker');
    try {
      await loadThrough('one of two workers SIGKILL', async () => {
        process.kill(pidOf('connect'), 'SIGKILL');
        // Every task ends up RUNNING on the survivor (after the group's rebalance delay).
        const survivor = { ...config, connect: { ...config.connect, url: `http://127.0.0.1:${port}` } };
        await until(
          async () => {
            const { json } = await connectApi(survivor, 'GET', `/connectors/${config.sink.connector}/status`);
            const tasks = json?.tasks ?? [];
            return (
              tasks.length === SINK_TASKS &&
              tasks.every((t: { worker_id: string; state: string }) => t.worker_id.endsWith(`:${port}`) && t.state === 'RUNNING')
            );
          },
          120_000,
          'all tasks on the second worker',
        );
      });
    } finally {
      const pid = second.pid();
      if (pid.state === 'running') await stopPid(pid.pid);
      await up(config, { log: () => {} });
    }
  }, 600_000);
});

async function findProducerPid(file: string) {
  const fs = await import('node:fs');
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (readText(`/proc/${entry}/cmdline`) ?? '').split('\0');
    if (argv.some((a) => a.endsWith('dist/producer/cli.js')) && argv.includes(file)) return Number(entry);
  }
  throw new Error('no producer running');
}
