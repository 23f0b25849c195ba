#!/usr/bin/env node
// npm run platform:fetch | platform:up | platform:down [-- --purge] | platform:status
import { parseFlags, table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { main } from '#lib/errors.mjs';
import { fetchPlatform } from '../platform/fetch.mjs';
import { down, status, up } from '../platform/lifecycle.mjs';

const USAGE = 'usage: node scripts/platform.mjs fetch [--refresh] | up | down [--purge] | status';

/** @param {import('../platform/lifecycle.mjs').Row[]} rows */
const print = (rows) =>
  console.log(
    table(
      ['service', 'address', 'state', 'ready in', 'log'],
      rows.map((r) => [r.name, r.address, r.state, r.seconds === null ? '' : `${r.seconds.toFixed(1)} s`, r.log]),
    ),
  );

process.on('SIGINT', () => {
  console.error('\ninterrupted: services already started keep running; `npm run platform:down` stops them');
  process.exit(130);
});

await main(async () => {
  const { positionals, values } = parseFlags({
    allowPositionals: true,
    options: {
      purge: { type: 'boolean', default: false },
      refresh: { type: 'boolean', default: false },
    },
  });
  const command = positionals[0];
  if (command === 'fetch') {
    const res = await fetchPlatform(config, { refresh: values.refresh });
    console.log(res.skipped ? 'platform cache up to date: nothing to fetch' : `fetched in ${res.seconds.toFixed(0)} s`);
  } else if (command === 'up') {
    const started = Date.now();
    print(await up(config));
    console.log(`all services ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } else if (command === 'down') {
    for (const { name, result } of await down(config, { purge: values.purge })) console.log(`${name.padEnd(9)} ${result}`);
    if (values.purge) console.log('data, pid files and logs deleted (downloads kept)');
  } else if (command === 'status') {
    const rows = await status(config);
    print(rows);
    process.exitCode = rows.every((r) => r.state === 'ready') ? 0 : 1;
  } else {
    console.error(USAGE);
    process.exitCode = 2;
  }
});
