// The watchdog for a cluster of the user's own: `npm run watchdog` in the
// foreground with PLATFORM=external, against the local platform used as if it
// were someone else's (its own watchdog stopped, so only this one acts).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, ROOT } from '#lib/config.mjs';
import { connectorStatus } from '#lib/connect.mjs';
import { pgPassword } from '#lib/credentials.mjs';
import { externalEnv } from '../../bench/lib.mjs';
import { services, up } from '../../platform/lifecycle.mjs';
import { pipelineReady, tempDir, until } from './helpers.js';

let out = '';
let child: ReturnType<typeof spawn> | undefined;

beforeAll(async () => {
  await pipelineReady();
  await services(config)
    .find((s) => s.name === 'watchdog')!
    .stop();
}, 300_000);

afterAll(async () => {
  child?.kill('SIGTERM');
  await up(config, { log: () => {} });
}, 300_000);

describe('npm run watchdog with PLATFORM=external', () => {
  it('holds the sink while the registry is away and lets it go when it answers, then stops cleanly on SIGTERM', async () => {
    const env = { ...process.env, ...externalEnv(config, tempDir('watchdog-user')), PG_SINK_PASSWORD: pgPassword(config, 'sink')! };
    child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'watchdog.mjs')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    await until(async () => /watching http:\/\/127\.0\.0\.1:\d+ for failed connectors/.test(out), 30_000, 'the watchdog to start');
    const registry = services(config).find((s) => s.name === 'registry')!;
    await registry.stop();
    try {
      await until(async () => /paused while the schema registry does not answer/.test(out), 60_000, `a hold in its output:\n${out}`);
      expect((await connectorStatus(config, config.sink.connector)).json.connector.state).toBe('PAUSED');
    } finally {
      // The registry alone: up() would start the platform's own watchdog again beside this one.
      await registry.start();
      await until(async () => registry.ready(), 120_000, 'the registry back');
    }
    await until(async () => /the schema registry answered again: synthetic-data-sink resumed/.test(out), 60_000, `the resume:\n${out}`);
    await until(async () => (await connectorStatus(config, config.sink.connector)).json.connector.state === 'RUNNING', 30_000, 'running');
    const exited = new Promise<number | null>((resolve) => child!.on('close', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped\s*$/);
    child = undefined;
  }, 300_000);
});
