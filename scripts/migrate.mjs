#!/usr/bin/env node
// npm run db:migrate [-- down [--count N]]: applies migrations/*.sql in order.
import { parseFlags } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { main } from '#lib/errors.mjs';
import { migrate } from '../ops/migrate.mjs';

await main(async () => {
  const { positionals, values } = parseFlags({ allowPositionals: true, options: { count: { type: 'string' } } });
  const direction = positionals[0] === 'down' ? 'down' : 'up';
  const names = await migrate(config, { direction, count: values.count ? Number(values.count) : undefined });
  console.log(names.length === 0 ? 'migrations: nothing to do' : `migrations ${direction}: ${names.join(', ')}`);
});
