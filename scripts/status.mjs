#!/usr/bin/env node
// npm run status: every service, connector and task; the sink's lag; rows;
// summary freshness; dead letters and rejected rows. Exits 1 when any part is down.
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { assessStatus, connectorStatus } from '#lib/connect.mjs';
import { main } from '#lib/errors.mjs';
import { withKafkaAdmin } from '#lib/kafka.mjs';
import { connectorFiles } from '../ops/connectors.mjs';
import { behind, kafkaFacts, tableFacts } from '../ops/facts.mjs';
import { status as platformStatus } from '../platform/lifecycle.mjs';

const section = (title, header, rows) => console.log(`\n${title}\n${table(header, rows)}`);
const iso = (d) => (d ? new Date(d).toISOString().replace('.000Z', 'Z') : '-');

await main(async () => {
  let healthy = true;
  const services = await platformStatus(config);
  healthy &&= services.every((s) => s.state === 'ready');
  section(
    'services',
    ['service', 'address', 'state', 'log'],
    services.map((s) => [s.name, s.address, s.state, s.log]),
  );
  const up = Object.fromEntries(services.map((s) => [s.name, s.state === 'ready']));

  if (up.connect) {
    const rows = [];
    for (const { name } of connectorFiles(config)) {
      const { status, json } = await connectorStatus(config, name);
      if (status === 404) {
        rows.push([name, 'not created (npm run connectors:apply)', '']);
        healthy = false;
        continue;
      }
      const verdict = assessStatus(json);
      healthy &&= verdict.state === 'running';
      rows.push([name, json.connector?.state ?? '?', (json.tasks ?? []).map((t) => `${t.id}:${t.state}`).join(' ')]);
    }
    section('connectors', ['connector', 'state', 'tasks'], rows);
  }

  if (up.kafka) {
    const k = await withKafkaAdmin(config, (admin) => kafkaFacts(admin, config));
    const { topic, dlqTopic, rejectedTopic } = config.pipeline;
    section(
      'kafka',
      ['what', 'messages'],
      [
        [`topic ${topic}`, String(k.messages)],
        [`sink lag (group ${config.sink.group})`, k.lag === null ? '-' : String(k.lag)],
        [`dead letter queue ${dlqTopic}`, String(k.deadLetters)],
        [`rejected rows ${rejectedTopic}`, String(k.rejected)],
      ],
    );
  }

  if (up.postgres) {
    try {
      const f = await tableFacts(config);
      section(
        'postgres',
        ['table', 'rows', 'newest', 'behind newest raw row'],
        [
          ['synthetic_data', String(f.raw_rows), iso(f.newest_raw), ''],
          ['stock_price_summary', String(f.stock_rows), iso(f.newest_stock), behind(f.newest_raw, f.newest_stock_end)],
          ['sales_trend_summary', String(f.sales_rows), iso(f.newest_sales), behind(f.newest_raw, f.newest_sales_end)],
        ],
      );
    } catch (err) {
      healthy = false;
      console.log(`\npostgres: ${err.message} (run \`npm run db:migrate\`)`);
    }
  }
  console.log(`\n${healthy ? 'all parts up' : 'some parts are down: `npm start` brings everything up'}`);
  process.exitCode = healthy ? 0 : 1;
});
