#!/usr/bin/env node
// npm run etl [-- --full]: store the summaries' buckets touched since the last
// refresh now (pg_cron does it every minute; the summary views show those
// buckets computed at query time meanwhile).
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { main } from '#lib/errors.mjs';
import { runEtl } from '../ops/etl.mjs';

await main(async () => {
  const { values } = parseFlags({ options: { full: { type: 'boolean', default: false } } });
  const r = await runEtl(config, { full: values.full });
  console.log(
    `${values.full ? 'full rebuild' : 'incremental refresh'}: ${r.stockBuckets} stock_price_summary and ${r.salesBuckets} sales_trend_summary buckets stored in ${r.ms.toFixed(1)} ms`,
  );
});
