#!/usr/bin/env node
// npm run bench:compose: the pipeline in containers against the native one, in
// one sitting. Natively: everything stopped and purged, then `npm start`
// (platform, migrations, connector, dataset, produce, land). In containers:
// volumes cleared, then `docker compose up -d --wait` and the wait for the
// year in PostgreSQL. Also the image build, cold (with BENCH_COLD=1: our
// images and the build cache removed first) and warm, and the image sizes.
// Destructive: both stacks end stopped and emptied.
import { $ } from 'zx';
import { table } from '#lib/cli.mjs';
import { config } from '#lib/config.mjs';
import { delay } from '#lib/procs.mjs';
import { dockerClientEnv } from '../platform/compose.mjs';
import { down } from '../platform/lifecycle.mjs';
import { rowsLanded } from './lib.mjs';

$.verbose = false;
const ROWS = 527_040;
const log = (line) => console.error(`[bench:compose] ${line}`);
$.env = dockerClientEnv(process.env);
const podman = Boolean($.env.DOCKER_HOST?.includes('podman'));
const seconds = (t0) => (Date.now() - t0) / 1000;
const rows = [];

async function waitYear(t0, timeoutMs = 900_000) {
  while ((await rowsLanded(config)) < ROWS) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`the year did not land within ${timeoutMs / 1000} s`);
    await delay(250);
  }
  return seconds(t0);
}

// Native: from nothing running and no data, as a first `npm start` after the fetch.
await $`docker compose down -v`.nothrow();
await down(config, { purge: true });
log('native: npm start from a purged state');
let t0 = Date.now();
const native = await $`node scripts/up.mjs`;
const nativeTotal = seconds(t0);
const landedLine = /the last landed ([\d.]+) s after the producer started/.exec(native.stdout)?.[1] ?? '?';
rows.push(['native: npm start, purged (platform up to summaries)', `${nativeTotal.toFixed(1)} s`]);
rows.push(['native: producer start to last row', `${landedLine} s`]);
await down(config, { purge: true });

if (process.env.BENCH_COLD === '1') {
  log('cold build: our images and the build cache removed');
  await $`docker compose down -v --rmi all`.nothrow();
  if (podman) await $`podman image prune -f`.nothrow();
  else await $`docker builder prune -af`.nothrow();
  t0 = Date.now();
  await $`docker compose build`;
  rows.push(['build, cold (base image present)', `${seconds(t0).toFixed(1)} s`]);
}
t0 = Date.now();
await $`docker compose build`;
rows.push(['build, warm (nothing changed)', `${seconds(t0).toFixed(1)} s`]);

log('containers: docker compose up -d --wait from empty volumes');
await $`docker compose down -v`.nothrow();
t0 = Date.now();
await $`docker compose up -d --wait`;
rows.push(['containers: up -d --wait, empty volumes', `${seconds(t0).toFixed(1)} s`]);
rows.push(['containers: up to the year in PostgreSQL', `${(await waitYear(t0)).toFixed(1)} s`]);
const produced = (await $`docker compose logs producer`).stdout;
rows.push(['containers: producer', /done: .*/.exec(produced)?.[0] ?? '?']);
for (const line of (await $`docker images --format ${'{{.Repository}}:{{.Tag}} {{.Size}}'}`).stdout.split('\n')) {
  if (line.startsWith('kafka-pg-pipeline/')) rows.push([`image ${line.split(' ')[0]}`, line.split(' ').slice(1).join(' ')]);
}
await $`docker compose down -v`;
console.log(table(['what', 'figure'], rows));
