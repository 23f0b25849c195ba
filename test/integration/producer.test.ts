// The producer against the real Kafka and registry, run as `npm run produce`
// runs it. Each test writes to topics of its own.
import fs from 'node:fs';
import path from 'node:path';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { generate } from '../../dataset/generate.js';
import { consumeAll, dist, endOffsetSum, partitionEnds, tempDir, uniqueName, until } from './helpers.js';

const brokers = [config.kafka.bootstrap];
let dir: string;
beforeAll(() => {
  dir = tempDir('producer');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Producer runs keep their checkpoints in a state folder of the test's own. */
const env = () => ({ STATE_DIR: path.join(dir, 'state') });

async function generateFile(name: string, rows: number, seed = 42) {
  const file = path.join(dir, name);
  const res = await dist('dataset/generate-cli.js', ['--rows', String(rows), '--seed', String(seed), '--out', file]).done;
  expect(res.code, res.stderr).toBe(0);
  return file;
}

const distinctIds = (messages: { key: Buffer | null }[]) => new Set(messages.map((m) => String(m.key)));

describe('producing the full year', () => {
  it('lands 527,040 messages whose Avro, read through the registry, equals the source rows', async () => {
    const file = await generateFile('full.parquet', 527_040);
    const topic = uniqueName('full-year');
    const res = await dist('producer/cli.js', ['--file', file, '--topic', topic], env(), 300_000).done;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^done: read 527,040, sent 527,040, rejected 0, .* rows\/s, peak RSS \d+ MB, CPU [\d.]+ s$/m);
    expect(await endOffsetSum(brokers, topic)).toBe(527_040);
    // Keyed by id over every partition (TOPIC_PARTITIONS), about evenly.
    const perPartition = await partitionEnds(brokers, topic);
    expect(perPartition).toHaveLength(config.pipeline.partitions);
    for (const n of perPartition) expect(n).toBeGreaterThan(527_040 / config.pipeline.partitions / 2);

    const source = generate({ rows: 527_040, seed: 42 });
    const registry = new SchemaRegistry({ host: config.registry.ccompatUrl });
    const sample = (await consumeAll(brokers, topic, 5000)).slice(0, 5000);
    for (const message of sample) {
      const decoded = await registry.decode(message.value!);
      const i = Number(decoded.id) - 1;
      expect(String(message.key)).toBe(String(decoded.id));
      expect(decoded).toEqual({
        id: Number(source.id[i]),
        timestamp: source.timestamp[i],
        stock_price: source.stock_price[i],
        sales_trend: source.sales_trend[i],
      });
    }
  }, 300_000);
});

describe('stopping and resuming', () => {
  it('resumes after SIGKILL from its checkpoint without skipping a row', async () => {
    const file = await generateFile('resume.parquet', 60_000, 1);
    const topic = uniqueName('resume');
    const first = dist('producer/cli.js', ['--file', file, '--topic', topic, '--rate', '20000'], env());
    await until(async () => (await endOffsetSum(brokers, topic).catch(() => 0)) > 5000, 30_000, 'the first rows');
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    const landed = await endOffsetSum(brokers, topic);
    expect(landed).toBeLessThan(60_000);

    const second = await dist('producer/cli.js', ['--file', file, '--topic', topic], env()).done;
    expect(second.code, second.stderr).toBe(0);
    const resumedAt = Number(/resuming at row ([\d,]+)/.exec(second.stderr)?.[1].replace(/,/g, ''));
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(landed);

    const total = await endOffsetSum(brokers, topic);
    const ids = distinctIds(await consumeAll(brokers, topic, total));
    expect(ids.size).toBe(60_000);
    for (let id = 1; id <= 60_000; id += 997) expect(ids.has(String(id))).toBe(true);
  });

  it('on SIGINT flushes, writes its checkpoint and says so; the next run finishes the file', async () => {
    const file = await generateFile('sigint.parquet', 60_000, 2);
    const topic = uniqueName('sigint');
    const first = dist('producer/cli.js', ['--file', file, '--topic', topic, '--rate', '20000'], env());
    await until(async () => (await endOffsetSum(brokers, topic).catch(() => 0)) > 5000, 30_000, 'the first rows');
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain('SIGINT: flushing what is in flight and writing the checkpoint');
    expect(stopped.stdout).toMatch(/^stopped: read [\d,]+, sent [\d,]+, .*checkpoint saved, the next run resumes there$/m);
    const sent = Number(/sent ([\d,]+)/.exec(stopped.stdout)![1].replace(/,/g, ''));
    // What it says it sent is what Kafka holds: nothing was lost in flight.
    expect(await endOffsetSum(brokers, topic)).toBe(sent);

    const again = await dist('producer/cli.js', ['--file', file, '--topic', topic], env()).done;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/resuming at row/);
    const total = await endOffsetSum(brokers, topic);
    expect(distinctIds(await consumeAll(brokers, topic, total)).size).toBe(60_000);

    const third = await dist('producer/cli.js', ['--file', file, '--topic', topic], env()).done;
    expect(third.stderr).toMatch(/already produced in full .*--restart sends it again/);
    expect(await endOffsetSum(brokers, topic)).toBe(total);
  });
});

describe('two producers at once', () => {
  it('on one file and topic: the second refuses in one line naming the first, which sends every row once', async () => {
    const file = await generateFile('twice.parquet', 200_000, 11);
    const topic = uniqueName('twice');
    // Paced, so the first is surely still running when the second starts.
    const first = dist('producer/cli.js', ['--file', file, '--topic', topic, '--rate', '40000'], env(), 120_000);
    await until(async () => (await endOffsetSum(brokers, topic).catch(() => 0)) > 0, 30_000, 'the first producer sending');
    const second = await dist('producer/cli.js', ['--file', file, '--topic', topic], env(), 60_000).done;
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toMatch(
      new RegExp(`^error: another producer \\(pid ${first.child.pid}, started .*\\) is sending .*twice\\.parquet to ${topic}`),
    );
    const done = await first.done;
    expect(done.code, done.stderr).toBe(0);
    expect(await endOffsetSum(brokers, topic)).toBe(200_000);
  }, 180_000);
});

describe('bad rows and bad files', () => {
  it('quarantines every invalid row, with its reason, and sends the valid ones', async () => {
    const topic = uniqueName('bad-rows');
    const res = await dist('producer/cli.js', ['--file', 'producer/fixtures/bad_rows.parquet', '--topic', topic], env()).done;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/done: read 10, sent 2, rejected 8/);
    expect(await endOffsetSum(brokers, topic)).toBe(2);
    const rejected = await consumeAll(brokers, `${topic}.rejected`, 8);
    const reasons = rejected.map((m) => JSON.parse(String(m.value)));
    expect(reasons.map((r) => r.reason).sort()).toEqual([
      'id "abc" is not an integer',
      'id -3 is not positive',
      'id is missing',
      'sales_trend is -Infinity',
      'stock_price is Infinity',
      'stock_price is NaN',
      'stock_price is missing',
      'timestamp is missing',
    ]);
    expect(reasons.find((r) => r.reason === 'stock_price is NaN')).toMatchObject({ row_index: 4, row: { id: '5', stock_price: 'NaN' } });
  });

  it.each([
    ['producer/fixtures/missing_column.parquet', /^error: .*missing column sales_trend/],
    ['producer/fixtures/wrong_type.parquet', /^error: .*column stock_price has type BYTE_ARRAY\/STRING: it must be a number/],
    ['/nonexistent/none.parquet', /^error: \/nonexistent\/none.parquet does not exist: run `npm run generate`/],
  ])('refuses %s in one line', async (file, message) => {
    const res = await dist('producer/cli.js', ['--file', file, '--topic', uniqueName('bad-file')], env()).done;
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(message);
  });

  it('refuses contradictory options in one line', async () => {
    const res = await dist('producer/cli.js', ['--rate', '10', '--speed', '2'], env()).done;
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe('error: --rate and --speed exclude each other: pick one');
  });
});

describe('options', () => {
  it('--limit, --from-id and --rate shape what is sent', async () => {
    const file = await generateFile('options.parquet', 2000, 3);
    const topic = uniqueName('options');
    const started = Date.now();
    const res = await dist(
      'producer/cli.js',
      ['--file', file, '--topic', topic, '--from-id', '501', '--limit', '1500', '--rate', '2000', '--restart'],
      env(),
    ).done;
    expect(res.code, res.stderr).toBe(0);
    // 1,500 rows read, the first 500 skipped by --from-id; 1,000 sent at 2,000 rows/s take at least half a second.
    expect(res.stdout).toMatch(/done: read 1,500, sent 1,000, rejected 0, skipped 500 \(--from-id\)/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    const ids = [...distinctIds(await consumeAll(brokers, topic, 1000))].map(Number).sort((a, b) => a - b);
    expect(ids[0]).toBe(501);
    expect(ids.at(-1)).toBe(1500);
  });
});
