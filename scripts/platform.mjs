#!/usr/bin/env node
// npm run platform:fetch | platform:up | platform:down [-- --purge] | platform:status
import { parseArgs } from 'node:util';
import { config } from './lib/env.mjs';
import { FatalError, down, fetchPlatform, status, up } from './lib/platform.mjs';
import { table } from './lib/render.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    purge: { type: 'boolean', default: false },
    refresh: { type: 'boolean', default: false },
  },
});
const command = positionals[0];

/** @param {import('./lib/platform.mjs').Row[]} rows */
const print = (rows) => console.log(table(
  ['service', 'address', 'state', 'ready in', 'log'],
  rows.map((r) => [r.name, r.address, r.state, r.seconds === null ? '' : `${r.seconds.toFixed(1)} s`, r.log]),
));

process.on('SIGINT', () => {
  console.error('\ninterrupted: services already started keep running; `npm run platform:down` stops them');
  process.exit(130);
});

try {
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
    console.error('usage: node scripts/platform.mjs fetch [--refresh] | up | down [--purge] | status');
    process.exitCode = 2;
  }
} catch (err) {
  if (!(err instanceof FatalError)) throw err;
  console.error(`error: ${err.message}`);
  process.exitCode = 1;
}
