#!/usr/bin/env node
// npm run status: every service, connector and task; the sink's lag; rows;
// summary freshness; dead letters and rejected rows with their reasons.
// Exits 1, saying why, when a part is down, stuck, failing again and again,
// or rows wait in the dead letter queue or among the rejected.
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { assessStatus, connectorStatus } from '#lib/connect.mjs';
import { main } from '#lib/errors.mjs';
import { groupRange, withKafkaAdmin } from '#lib/kafka.mjs';
import { delay } from '#lib/procs.mjs';
import { connectorFiles } from '../ops/connectors.mjs';
import { behind, kafkaFacts, tableFacts } from '../ops/facts.mjs';
import { problems } from '../ops/health.mjs';
import { age, pending, quarantines } from '../ops/quarantine.mjs';
import { readWatchdogState } from '../ops/watchdog.mjs';
import { status as platformStatus } from '../platform/lifecycle.mjs';

// How long a sink with lag must show no progress to count as stuck (it
// commits every second while it moves).
const STUCK_SAMPLE_MS = 4000;

const section = (title, header, rows) => console.log(`\n${title}\n${table(header, rows)}`);
const iso = (d) => (d ? new Date(d).toISOString().replace('.000Z', 'Z') : '-');
const reasons = (q) => q.reasons.map(([r, n]) => `${n} x ${r}`).join('; ') || '-';

await main(async () => {
  /** @type {import('../ops/health.mjs').Facts} */
  const facts = {
    services: [],
    connectors: [],
    sink: null,
    dlq: null,
    restarts: readWatchdogState(config)?.connectors ?? {},
    tables: null,
    external: config.platform === 'external',
  };
  facts.services = await platformStatus(config);
  // The compose stack's watchdog keeps its record in its own volume: ours would be stale.
  if (facts.services.some((s) => s.container)) facts.restarts = {};
  section(
    'services',
    ['service', 'address', 'state', 'log'],
    facts.services.map((s) => [s.name, s.address, s.state, s.log]),
  );
  const up = Object.fromEntries(facts.services.map((s) => [s.name, s.state === 'ready']));

  if (up.connect) {
    const rows = [];
    for (const { name } of connectorFiles(config)) {
      const { status, json } = await connectorStatus(config, name);
      if (status === 404) {
        rows.push([name, 'not created (npm run connectors:apply)', '']);
        facts.connectors.push({ name, state: 'missing', detail: '' });
        continue;
      }
      const verdict = assessStatus(json);
      facts.connectors.push({ name, state: verdict.state, detail: verdict.detail });
      const restarts = facts.restarts[name]?.restarts.length ?? 0;
      rows.push([
        name,
        json.connector?.state ?? '?',
        (json.tasks ?? []).map((t) => `${t.id}:${t.state}`).join(' '),
        restarts ? `${restarts} (last ${age(Date.now() - Date.parse(facts.restarts[name].restarts.at(-1)))} ago)` : '0',
      ]);
    }
    section('connectors', ['connector', 'state', 'tasks', 'watchdog restarts'], rows);
  }

  if (up.kafka) {
    await withKafkaAdmin(config, async (admin) => {
      const k = await kafkaFacts(admin, config);
      let moved = true;
      if (k.lag) {
        // Lag alone says nothing: a sink at work has some. Lag whose offsets do not move does.
        const before = await groupRange(admin, config.pipeline.topic, config.sink.group);
        await delay(STUCK_SAMPLE_MS);
        const after = await groupRange(admin, config.pipeline.topic, config.sink.group);
        moved = after.some((p, i) => p.from !== before[i]?.from);
      }
      facts.sink = { lag: k.lag, moved };
      const q = quarantines(config);
      facts.dlq = await pending(config, admin, q.dlq);
      const rejected = await pending(config, admin, q.rejected);
      facts.rejected = rejected;
      const { topic, dlqTopic, rejectedTopic } = config.pipeline;
      const since = (x) => (x.oldestAt ? `${age(Date.now() - x.oldestAt.getTime())}` : '-');
      section(
        'kafka',
        ['what', 'messages', 'not replayed', 'oldest', 'top reasons'],
        [
          [`topic ${topic}`, String(k.messages), '', '', ''],
          [`sink lag (group ${config.sink.group})`, k.lag === null ? '-' : `${k.lag}${k.lag && !moved ? ' (stuck)' : ''}`, '', '', ''],
          [`dead letter queue ${dlqTopic}`, String(facts.dlq.total), String(facts.dlq.pending), since(facts.dlq), reasons(facts.dlq)],
          [`rejected rows ${rejectedTopic}`, String(rejected.total), String(rejected.pending), since(rejected), reasons(rejected)],
        ],
      );
    });
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
      facts.tables = `postgres: ${err.message}`;
    }
  }
  // What the watchdog healed by itself, and what it holds now: status tells the truth about both.
  const heal = facts.services.some((s) => s.container) ? undefined : readWatchdogState(config)?.heal;
  if (heal?.hold)
    console.log(
      `\nwatchdog: ${config.sink.connector} paused since ${heal.hold.since}: the schema registry does not answer (${heal.hold.why})`,
    );
  for (const h of (heal?.healed ?? []).filter((x) => Date.now() - Date.parse(x.at) < 24 * 3600_000).slice(-3))
    console.log(`healed ${age(Date.now() - Date.parse(h.at))} ago: ${h.what}`);
  const found = problems(facts);
  if (found.length === 0) console.log('\nall parts up');
  else console.log(`\n${found.map((p) => `problem: ${p}`).join('\n')}`);
  process.exitCode = found.length === 0 ? 0 : 1;
});
