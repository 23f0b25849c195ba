#!/usr/bin/env node
// npm run status: every service, connector and task; the sink's lag; rows;
// summary freshness; dead letters and rejected rows. Exits 1 when any part is down.
import { config } from './lib/env.mjs';
import { fail } from './lib/cli.mjs';
import { assessStatus, connectApi, connectorFiles } from './lib/connectors.mjs';
import { status as platformStatus } from './lib/platform.mjs';
import { DLQ_TOPIC, SINK_CONNECTOR, consumerLag, kafkaAdmin, tableFacts, topicSize } from './lib/pipeline.mjs';
import { table } from './lib/render.mjs';

let healthy = true;
const section = (title, header, rows) => console.log(`\n${title}\n${table(header, rows)}`);
/** How far the newest raw row lies past the end of the newest bucket (0 when that bucket covers it). */
const behind = (raw, bucketStart, bucketMinutes) => {
  if (!raw || !bucketStart) return '-';
  const gap = new Date(raw).getTime() - (new Date(bucketStart).getTime() + bucketMinutes * 60_000);
  return gap < 0 ? 'up to date' : `${Math.ceil(gap / 60_000)} min`;
};
const iso = (d) => (d ? new Date(d).toISOString().replace('.000Z', 'Z') : '-');

try {
  const services = await platformStatus(config);
  healthy &&= services.every((s) => s.state === 'ready');
  section('services', ['service', 'address', 'state', 'log'], services.map((s) => [s.name, s.address, s.state, s.log]));
  const up = Object.fromEntries(services.map((s) => [s.name, s.state === 'ready']));

  if (up.connect) {
    const rows = [];
    for (const { name } of connectorFiles(config)) {
      const { status, json } = await connectApi(config, 'GET', `/connectors/${encodeURIComponent(name)}/status`);
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
    const admin = kafkaAdmin(config);
    await admin.connect();
    try {
      const lag = await consumerLag(admin, config.pipeline.topic, `connect-${SINK_CONNECTOR}`).catch(() => null);
      section('kafka', ['what', 'messages'], [
        [`topic ${config.pipeline.topic}`, String(await topicSize(admin, config.pipeline.topic))],
        [`sink lag (group connect-${SINK_CONNECTOR})`, lag === null ? '-' : String(lag)],
        [`dead letter queue ${DLQ_TOPIC}`, String(await topicSize(admin, DLQ_TOPIC))],
        [`rejected rows ${config.pipeline.rejectedTopic}`, String(await topicSize(admin, config.pipeline.rejectedTopic))],
      ]);
    } finally {
      await admin.disconnect();
    }
  }

  if (up.postgres) {
    try {
      const f = await tableFacts(config);
      section('postgres', ['table', 'rows', 'newest', 'behind newest raw row'], [
        ['synthetic_data', String(f.raw_rows), iso(f.newest_raw), ''],
        ['stock_price_summary', String(f.stock_rows), iso(f.newest_stock), behind(f.newest_raw, f.newest_stock, 10)],
        ['sales_trend_summary', String(f.sales_rows), iso(f.newest_sales), behind(f.newest_raw, f.newest_sales, 20)],
      ]);
    } catch (err) {
      healthy = false;
      console.log(`\npostgres: ${err.message} (run \`npm run db:migrate\`)`);
    }
  }
  console.log(`\n${healthy ? 'all parts up' : 'some parts are down: `npm start` brings everything up'}`);
  process.exitCode = healthy ? 0 : 1;
} catch (err) {
  fail(err);
}
