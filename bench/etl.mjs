#!/usr/bin/env node
// npm run bench:etl: the ETL procedure's times on the loaded table: full
// rebuild, and incremental runs after one minute and after one hour of new
// rows (one row a minute, as the dataset has them), each run a few times.
import { config } from '../scripts/lib/env.mjs';
import { pgClient } from '../scripts/lib/platform.mjs';
import { runEtl } from '../scripts/lib/pipeline.mjs';
import { table } from '../scripts/lib/render.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const admin = pgClient(config);
await admin.connect();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  const { rows: [facts] } = await admin.query('select count(*)::int as n, max(id) as max_id, max("timestamp") as newest from synthetic_data');
  if (facts.n === 0) throw new Error('synthetic_data is empty: run `npm start` first');
  const results = [];

  const full = [];
  for (let i = 0; i < RUNS; i++) full.push((await runEtl(config, { full: true })).ms);
  results.push(['full rebuild', `${facts.n.toLocaleString('en')} rows`, `${median(full).toFixed(1)} ms`, `${Math.min(...full).toFixed(1)} ms`]);

  // New rows after the newest: the sink's path, as the sink role would write them.
  let nextId = Number(facts.max_id) + 1;
  let nextTs = new Date(facts.newest).getTime() + 60_000;
  const added = [];
  for (const [label, minutes] of [['incremental, 1 minute of new rows', 1], ['incremental, 1 hour of new rows', 60]]) {
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      const values = [];
      const params = [];
      for (let m = 0; m < minutes; m++) {
        params.push(nextId, new Date(nextTs), 100 + m, 200 + m);
        values.push(`($${params.length - 3}, $${params.length - 2}, $${params.length - 1}, $${params.length})`);
        added.push(nextId);
        nextId++;
        nextTs += 60_000;
      }
      await admin.query(`insert into synthetic_data (id, "timestamp", stock_price, sales_trend) values ${values.join(',')}`, params);
      times.push((await runEtl(config)).ms);
    }
    results.push([label, `${minutes} row${minutes > 1 ? 's' : ''}`, `${median(times).toFixed(1)} ms`, `${Math.min(...times).toFixed(1)} ms`]);
  }
  await admin.query('delete from synthetic_data where id = any($1::bigint[])', [added]);
  await runEtl(config);
  console.log(`ETL benchmark, ${RUNS} runs each (median and best)`);
  console.log(table(['run', 'input', 'median', 'best'], results));
} finally {
  await admin.end();
}
