#!/usr/bin/env node
// npm run etl [-- --full]: refresh the summaries now (pg_cron does it every minute).
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { main } from '#lib/errors.mjs';
import { runEtl } from '../ops/etl.mjs';

await main(async () => {
  const { values } = parseFlags({ options: { full: { type: 'boolean', default: false } } });
  const r = await runEtl(config, { full: values.full });
  console.log(
    `${values.full ? 'full rebuild' : 'incremental refresh'}: ${r.stockBuckets} stock_price_summary and ${r.salesBuckets} sales_trend_summary buckets written in ${r.ms.toFixed(1)} ms`,
  );
});
