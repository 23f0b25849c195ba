// @ts-check
// One broker against three (replication 3, min.insync.replicas 2, SASL_SSL,
// ACLs, two Connect workers), in one sitting: the full year from producer
// start to last row, the platform's memory, and how long a node killed takes
// to be back in sync. The default platform is the one-broker side; the
// three-node platform runs beside it in a state folder and on ports of its
// own, and is stopped and deleted at the end. Destructive for the default
// platform's pipeline (it empties and reloads it, as `npm run bench` does).
//   npm run bench:cluster
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { table } from '#lib/cli.mjs';
import { config, loadConfig, ROOT } from '#lib/config.mjs';
import { delay, freePortRange, isAlive, readText } from '#lib/procs.mjs';
import { migrate } from '../ops/migrate.mjs';
import { down, ourPids, up } from '../platform/lifecycle.mjs';
import { allInSync, externalEnv, resetPipeline, rowsLanded, rssMb, secondPlatformEnv, waitLoaded } from './lib.mjs';

const ROWS = 527_040;
const quiet = () => {};

/** @param {import('#lib/config.mjs').Config} target @param {Record<string, string>} env */
async function fullYear(target, env) {
  await resetPipeline(target);
  const t0 = Date.now();
  await $({ quiet: true, env: { ...process.env, ...env } })`node --max-old-space-size=96 dist/producer/cli.js --restart`;
  const produced = (Date.now() - t0) / 1000;
  const loaded = await waitLoaded(target, ROWS, 600_000);
  const seconds = (loaded.last - t0) / 1000;
  return { seconds, rowsPerSecond: Math.round(ROWS / seconds), producerSeconds: produced };
}

/** SIGKILL node 2 mid-load; seconds until rows land again, and until every replica is back in sync after `up`. @param {import('#lib/config.mjs').Config} sec @param {Record<string, string>} env */
async function nodeKill(sec, env) {
  await resetPipeline(sec);
  const producer = $({ quiet: true, env: { ...process.env, ...env } })`node --max-old-space-size=96 dist/producer/cli.js --restart`;
  while ((await rowsLanded(sec)) < 100_000) await delay(200);
  const pid = Number(readText(path.join(sec.runDir, 'kafka-2.pid')));
  const before = await rowsLanded(sec);
  const killed = Date.now();
  process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await delay(50);
  while ((await rowsLanded(sec)) <= before) await delay(100);
  const landing = (Date.now() - killed) / 1000;
  await up(sec, { log: quiet });
  while (!(await allInSync(sec, 3))) await delay(250);
  const inSync = (Date.now() - killed) / 1000;
  await producer;
  await waitLoaded(sec, ROWS, 600_000);
  return { landing, inSync };
}

$.cwd = ROOT;
await $({ quiet: true })`npm run -s build`;
console.log('one broker: the default platform');
await up(config, { log: quiet });
const one = await fullYear(config, {});
const oneMb = rssMb(ourPids(config));

const state = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-bench-cluster-'));
const userState = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-bench-user-'));
const env = secondPlatformEnv({
  stateDir: state,
  cacheDir: config.cacheDir,
  base: await freePortRange(12),
  brokers: 3,
  protocol: 'SASL_SSL',
});
const sec = loadConfig(ROOT, { ...process.env, ...env });
try {
  console.log(`three nodes, SASL_SSL: a second platform in ${state}`);
  const started = Date.now();
  await up(sec, { log: quiet });
  const upSeconds = (Date.now() - started) / 1000;
  await migrate(sec);
  const user = externalEnv(sec, userState);
  const three = await fullYear(sec, user);
  const threeMb = rssMb(ourPids(sec));
  const kill = await nodeKill(sec, user);
  const rows = [
    ['one broker, plaintext (default)', one.seconds.toFixed(1), String(one.rowsPerSecond), '1.00', `${oneMb} MB`, '-'],
    [
      'three nodes, replication 3, SASL_SSL, ACLs, 2 workers',
      three.seconds.toFixed(1),
      String(three.rowsPerSecond),
      (three.seconds / one.seconds).toFixed(2),
      `${threeMb} MB`,
      `up in ${upSeconds.toFixed(1)} s`,
    ],
  ];
  console.log(`\n${table(['platform', 'full year, s', 'rows/s', 'time ratio', 'memory (RSS of its processes)', ''], rows)}`);
  console.log(
    `\nnode 2 SIGKILLed mid-load: rows landing again ${kill.landing.toFixed(1)} s after the kill; every replica back in sync ${kill.inSync.toFixed(1)} s after it (restart included)`,
  );
  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(
    path.join(ROOT, 'bench', 'results', 'cluster.json'),
    JSON.stringify(
      { at: new Date().toISOString(), one: { ...one, rssMb: oneMb }, three: { ...three, rssMb: threeMb, upSeconds }, kill },
      null,
      2,
    ),
  );
} finally {
  await down(sec);
  fs.rmSync(state, { recursive: true, force: true });
  fs.rmSync(userState, { recursive: true, force: true });
}
