#!/usr/bin/env node
// npm run db:migrate [-- down [--count N]]: applies migrations/*.sql in order.
import { parseArgs } from 'node:util';
import { config } from './lib/env.mjs';
import { migrate } from './lib/db.mjs';
import { fail } from './lib/cli.mjs';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { count: { type: 'string' } } });
const direction = positionals[0] === 'down' ? 'down' : 'up';
try {
  const names = await migrate(config, { direction, count: values.count ? Number(values.count) : undefined });
  console.log(names.length === 0 ? 'migrations: nothing to do' : `migrations ${direction}: ${names.join(', ')}`);
} catch (err) {
  fail(err);
}
