#!/usr/bin/env node
// npm start: the whole pipeline, idempotently. Platform, migrations,
// connectors, dataset, produce, wait until every row has landed, ETL, report.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { cell, table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { writeClientRecipes } from '#lib/credentials.mjs';
import { UserError, main } from '#lib/errors.mjs';
import { consumerLag, topicSize, withKafkaAdmin } from '#lib/kafka.mjs';
import { withPg } from '#lib/pg.mjs';
import { delay } from '#lib/procs.mjs';
import { applyConnectors } from '../ops/connectors.mjs';
import { pending, quarantines } from '../ops/quarantine.mjs';
import { runEtl } from '../ops/etl.mjs';
import { migrate } from '../ops/migrate.mjs';
import { up } from '../platform/lifecycle.mjs';

$.verbose = false;
const stages = [];
const stage = async (name, work) => {
  const started = performance.now();
  console.log(`\n▶ ${name}`);
  const result = await work();
  stages.push([name, `${((performance.now() - started) / 1000).toFixed(1)} s`, result]);
  console.log(`  ${result}`);
  return result;
};
const rel = (p) => path.relative(process.cwd(), p) || '.';

let child = null;
process.on('SIGINT', () => {
  // The producer (same terminal) gets the signal too and checkpoints; wait for it.
  if (child) return;
  console.error('\ninterrupted: what runs keeps running; `npm start` again picks up where this left, `npm stop` stops it');
  process.exit(130);
});

await main(async () => {
  await stage('platform', async () => {
    const rows = await up(config, { log: (line) => console.log(`  ${line}`) });
    return `${rows.length} services ready (${rows.map((r) => `${r.name} ${r.state}`).join(', ')})`;
  });
  await stage('migrations', async () => {
    const applied = await migrate(config);
    return applied.length ? `applied ${applied.length}: ${applied.join(', ')}` : 'up to date';
  });
  await stage('connectors', async () => {
    const results = await applyConnectors(config, { log: (line) => console.log(`  ${line}`) });
    return results.map((r) => `${r.name} RUNNING (${r.detail})`).join('; ');
  });
  await stage('build', async () => {
    await $`npm run -s build`;
    return 'dist/ up to date';
  });
  await stage('dataset', async () => {
    if (fs.existsSync(config.datasetFile)) return `${rel(config.datasetFile)} exists (npm run generate writes it anew)`;
    const out = await $`node dist/dataset/generate-cli.js --out ${config.datasetFile}`;
    return out.stdout.trim();
  });

  const producedAt = Date.now();
  const produced = await stage(
    'produce',
    () =>
      new Promise((resolve, reject) => {
        child = spawn(process.execPath, ['--max-old-space-size=96', 'dist/producer/cli.js', '--file', config.datasetFile], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.on('close', (code) => {
          child = null;
          if (code === 0) resolve(out.trim().split('\n').pop());
          else if (code === 130) reject(new UserError('producer stopped; its checkpoint is saved: `npm start` resumes it'));
          else reject(new UserError(`the producer failed (exit ${code}); ${out.trim()}`));
        });
      }),
  );

  await stage('land', () => waitLanded(producedAt, /sent 0,/.test(produced)));
  await stage('check', checkLanded);
  await stage('etl', async () => {
    const r = await runEtl(config);
    return `${r.stockBuckets.toLocaleString('en')} stock and ${r.salesBuckets.toLocaleString('en')} sales buckets stored in ${r.ms.toFixed(0)} ms (the summaries show new rows at once; pg_cron stores them every minute)`;
  });

  await report();
});

/** Polls until the sink has consumed the whole topic and the table holds it. */
async function waitLanded(producedAt, nothingSent) {
  return withKafkaAdmin(config, (admin) =>
    withPg(config, 'reader', async (db) => {
      let lastCount = -1;
      let lastChange = Date.now();
      let lastPrint = Date.now();
      for (;;) {
        const [{ rows }, lag] = await Promise.all([
          db.query('select count(*)::int as n, max(ingested_at) as last from synthetic_data'),
          consumerLag(admin, config.pipeline.topic, config.sink.group).catch(() => Infinity),
        ]);
        const { n, last } = rows[0];
        const line = `${n.toLocaleString('en')} rows in synthetic_data, sink lag ${Number.isFinite(lag) ? lag.toLocaleString('en') : '?'}`;
        if (n !== lastCount) {
          lastCount = n;
          lastChange = Date.now();
          if (process.stdout.isTTY) process.stdout.write(`\r  ${line}   `);
        }
        if (!process.stdout.isTTY && Date.now() - lastPrint > 5000) {
          lastPrint = Date.now();
          console.log(`  ${line}`);
        }
        if (lag === 0) {
          if (process.stdout.isTTY) process.stdout.write('\n');
          if (nothingSent) return `${n.toLocaleString('en')} rows in synthetic_data; nothing new to land`;
          const seconds = last ? (new Date(last).getTime() - producedAt) / 1000 : 0;
          return `${n.toLocaleString('en')} rows in synthetic_data; the last landed ${seconds.toFixed(1)} s after the producer started`;
        }
        if (Date.now() - lastChange > 60_000) {
          const dlq = await topicSize(admin, config.pipeline.dlqTopic);
          throw new UserError(
            `no row landed for 60 s (sink lag ${lag}, ${dlq} messages in the dead letter queue): see \`npm run status\` and .local/logs/connect.log`,
          );
        }
        await delay(250);
      }
    }),
  );
}

/**
 * Lag 0 says the sink read everything, not that everything landed: rows it
 * dead-lettered are read too. Every valid row of the file must be in the table.
 */
async function checkLanded() {
  const { distinctValidIds } = await import('../dist/producer/ledger.js');
  const ids = await distinctValidIds(config.datasetFile);
  const present = await withPg(
    config,
    'reader',
    async (db) => (await db.query('select count(*)::int as n from synthetic_data where id = any($1::bigint[])', [ids])).rows[0].n,
  );
  const dlq = await withKafkaAdmin(config, (admin) => pending(config, admin, quarantines(config).dlq));
  const waiting = dlq.pending
    ? `${dlq.pending.toLocaleString('en')} records wait in the dead letter queue (${dlq.reasons.map(([r, n]) => `${n} x ${r}`).join('; ')})`
    : '';
  if (present < ids.length) {
    const missing = (ids.length - present).toLocaleString('en');
    throw new UserError(
      `${missing} of the ${ids.length.toLocaleString('en')} rows sent are not in synthetic_data${waiting ? `; ${waiting}` : ''}: see \`npm run status\`, fix the cause, then \`npm run dlq:replay\``,
    );
  }
  return `all ${ids.length.toLocaleString('en')} rows of ${rel(config.datasetFile)} are in synthetic_data${waiting ? `; ${waiting} from earlier (\`npm run status\`)` : ''}`;
}

async function report() {
  console.log(
    `\n${table(
      ['stage', 'time', 'result'],
      stages.map(([a, b, c]) => [a, b, c.length > 110 ? `${c.slice(0, 107)}...` : c]),
    )}`,
  );
  await withPg(config, 'reader', async (db) => {
    const counts = (
      await db.query(`select
      (select count(*) from synthetic_data)::int as raw,
      (select count(*) from stock_price_summary)::int as stock,
      (select count(*) from sales_trend_summary)::int as sales`)
    ).rows[0];
    console.log(
      `\nsynthetic_data ${counts.raw.toLocaleString('en')} rows, stock_price_summary ${counts.stock.toLocaleString('en')}, sales_trend_summary ${counts.sales.toLocaleString('en')}`,
    );
    const show = async (sql, columns) => {
      const { rows } = await db.query(sql);
      console.log(
        table(
          columns,
          rows.map((r) => columns.map((c) => cell(r[c]))),
        ),
      );
    };
    console.log('');
    await show('select id, "timestamp", stock_price, sales_trend from synthetic_data order by id limit 3', [
      'id',
      'timestamp',
      'stock_price',
      'sales_trend',
    ]);
    console.log('');
    await show(
      'select interval_start, avg_stock_price, min_stock_price, max_stock_price, sample_count from stock_price_summary order by interval_start limit 3',
      ['interval_start', 'avg_stock_price', 'min_stock_price', 'max_stock_price', 'sample_count'],
    );
    console.log('');
    await show(
      'select interval_start, avg_sales_trend, min_sales_trend, max_sales_trend, sample_count from sales_trend_summary order by interval_start limit 3',
      ['interval_start', 'avg_sales_trend', 'min_sales_trend', 'max_sales_trend', 'sample_count'],
    );
  });
  const { pg } = config;
  const external = config.platform === 'external';
  // Credentials by file or variable name only: the report is a log too.
  const recipes = external ? null : writeClientRecipes(config);
  const rel = (/** @type {string} */ file) => path.relative(config.root, file);
  const connectAuth = config.connect.auth
    ? external
      ? ' -u "$CONNECT_USERNAME:$CONNECT_PASSWORD"'
      : ` -K ${rel(/** @type {{ curlrc: string }} */ (recipes).curlrc)}`
    : '';
  const registryUser = config.registry.auth.username ? ' -u "$SCHEMA_REGISTRY_USERNAME:$SCHEMA_REGISTRY_PASSWORD"' : '';
  console.log(`
The pipeline is running. Explore:
  ${external ? 'npm run dashboard     # the live dashboard (PLATFORM=external starts nothing by itself)' : `${config.dashboard.url}    # the live dashboard: candles, sales, pipeline health`}
  ${external ? `psql -h ${pg.host} -p ${pg.port} -U ${pg.adminUser} -d ${pg.database}   # your password (PGPASSWORD or ~/.pgpass)` : 'npm run -s psql      # psql into the database as the admin (`-- -U pipeline_reader` for a role)'}
      SELECT * FROM synthetic_data;  SELECT * FROM stock_price_summary;  SELECT * FROM sales_trend_summary;
  curl -s${connectAuth} ${config.connect.url}/connectors/${config.sink.connector}/status
  curl -s${registryUser} ${config.registry.ccompatUrl}/subjects
  npm run status        # services, tasks, lag, freshness, dead letters
  npm stop              # ${external ? 'stops nothing of an external platform' : 'stop everything'}`);
}
