#!/usr/bin/env node
// npm run bench:producer: generator time for the full year, then the producer
// on the full file into fresh topics (rows/s, peak resident memory), a few
// runs each. Figures, not assertions: the machine is shared and noisy.
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { $ } from 'zx';
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { kafkaAdmin } from '#lib/kafka.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
$.verbose = false;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-bench-'));
const file = path.join(dir, 'year.parquet');
const stateDir = path.join(dir, 'state');
const topics = [];
const rows = [];
try {
  await $`npm run -s build`;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await $`node dist/dataset/generate-cli.js --out ${file}`;
    rows.push(['generate (527,040 rows)', `run ${i + 1}`, `${((performance.now() - t) / 1000).toFixed(2)} s wall`, '', '']);
  }
  for (let i = 0; i < RUNS; i++) {
    const topic = `bench-producer-${Date.now()}`;
    topics.push(topic, `${topic}.rejected`);
    const out = await $({
      env: { ...process.env, STATE_DIR: stateDir },
      quiet: true,
    })`node --max-old-space-size=96 dist/producer/cli.js --file ${file} --topic ${topic}`;
    const m = /sent ([\d,]+), .*, ([\d.]+) s, ([\d,]+) rows\/s, peak RSS (\d+) MB/.exec(out.stdout);
    if (!m) throw new Error(`unexpected producer output: ${out.stdout}`);
    rows.push(['produce (full file)', `run ${i + 1}`, `${m[2]} s`, `${m[3]} rows/s`, `${m[4]} MB peak RSS`]);
  }
  console.log(
    `producer benchmark on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, compression ${config.producer.compression}, ${config.pipeline.partitions} partitions`,
  );
  console.log(table(['stage', 'run', 'time', 'throughput', 'memory'], rows));
} finally {
  const admin = kafkaAdmin(config);
  await admin
    .connect()
    .then(() => admin.deleteTopics({ topics }))
    .catch(() => {})
    .finally(() => admin.disconnect());
  fs.rmSync(dir, { recursive: true, force: true });
}
