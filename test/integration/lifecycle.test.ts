// The platform's life cycle through its commands: `up` twice reuses, `down`
// leaves no process of ours, schemas survive a restart (they live in PostgreSQL).
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { describe, expect, it } from 'vitest';
import { config } from '#lib/config.mjs';
import { portTaken, readText } from '#lib/procs.mjs';
import { ourPids } from '../../platform/lifecycle.mjs';
import { cli, uniqueName } from './helpers.js';

const SERVICES = ['postgres', 'kafka', 'registry', 'connect', 'watchdog', 'dashboard'];
const PORTS = [
  config.pg.port,
  config.kafka.port,
  config.kafka.controllerPort,
  config.registry.port,
  config.registry.managementPort,
  config.connect.port,
  config.dashboard.port,
];

describe('platform life cycle', () => {
  it('up on a running platform reuses every service', async () => {
    const res = await cli('platform.mjs', ['up']);
    expect(res.code, res.stderr).toBe(0);
    for (const name of SERVICES) expect(res.stdout).toMatch(new RegExp(`^${name} .* running \\(reused\\)`, 'm'));
  });

  it('restarts a running service whose settings changed, and only that one', async () => {
    const changed = await cli('platform.mjs', ['up'], { CONNECT_HEAP: '-Xms256m -Xmx700m' });
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toMatch(/^connect .* restarted \(settings changed\)/m);
    expect(changed.stdout).toMatch(/^kafka .* running \(reused\)/m);
    const back = await cli('platform.mjs', ['up']);
    expect(back.stdout).toMatch(/^connect .* restarted \(settings changed\)/m);
    const again = await cli('platform.mjs', ['up']);
    expect(again.stdout).toMatch(/^connect .* running \(reused\)/m);
  }, 180_000);

  it('down stops every process of ours, status then fails, up brings all back with the schemas kept', async () => {
    const registry = new SchemaRegistry({ host: config.registry.ccompatUrl });
    const subject = uniqueName('lifecycle-value');
    const schema = JSON.stringify({ type: 'record', name: 'Kept', fields: [{ name: 'n', type: 'int' }] });
    const { id } = await registry.register({ type: SchemaType.AVRO, schema }, { subject });
    expect(ourPids(config).length).toBeGreaterThanOrEqual(5);

    const down = await cli('platform.mjs', ['down']);
    expect(down.code, down.stderr).toBe(0);
    for (const name of SERVICES) expect(down.stdout).toMatch(new RegExp(`^${name}\\s+(stopped|killed)`, 'm'));
    expect(ourPids(config)).toEqual([]);
    for (const port of PORTS) expect(await portTaken('127.0.0.1', port), `port ${port}`).toBe(false);

    const status = await cli('platform.mjs', ['status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^kafka .* down/m);

    const up = await cli('platform.mjs', ['up']);
    expect(up.code, up.stderr).toBe(0);
    for (const name of SERVICES) expect(up.stdout).toMatch(new RegExp(`^${name} .* started`, 'm'));
    expect(up.stdout).toMatch(/all services ready in [\d.]+ s/);
    expect(await registry.getLatestSchemaId(subject)).toBe(id);
  }, 300_000);

  it('two up at once start each service once: the second waits for the first', async () => {
    const down = await cli('platform.mjs', ['down']);
    expect(down.code, down.stderr).toBe(0);
    const [a, b] = await Promise.all([cli('platform.mjs', ['up']), cli('platform.mjs', ['up'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [first, second] = /started/.test(a.stdout) ? [a, b] : [b, a];
    for (const name of SERVICES) {
      expect(first.stdout).toMatch(new RegExp(`^${name} .* started`, 'm'));
      expect(second.stdout).toMatch(new RegExp(`^${name} .* running \\(reused\\)`, 'm'));
    }
    expect(second.stdout).toMatch(/another platform command \(pid \d+\) is starting or stopping the services: waiting for it/);
    // One JVM per service, one postmaster, one watchdog: no orphan.
    const markers = ourPids(config).map(
      (pid) => (readText(`/proc/${pid}/cmdline`) ?? '').match(/-Dkpp\.service=(\w+)@/)?.[1] ?? 'postgres',
    );
    expect(markers.sort()).toEqual([...SERVICES].sort());
  }, 300_000);
});
