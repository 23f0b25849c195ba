import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watch } from './watchdog.mjs';

// Before, the watchdog swallowed every error of a turn: Connect away, a full
// disk, a bug of ours all looked like a quiet, healthy log.

type Config = Parameters<typeof watch>[0];
let dir: string;
let server: http.Server | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-watchdog-'));
});
afterEach(async () => {
  if (server) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const configFor = (url: string) =>
  ({ runDir: dir, connect: { url, auth: false }, sink: { connector: 'sink' }, platform: 'local' }) as unknown as Config;

/** A Connect that answers every request with `status` and `body`. */
async function fakeConnect(status: number, body: unknown) {
  server = http.createServer((_, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

/** Runs `turns` turns of the watchdog, fast; its log lines without their first ("watching ..."). */
async function run(config: Config, turns: number, repeatMs = 60_000) {
  const lines: string[] = [];
  let asked = 0;
  await watch(config, { log: (line) => lines.push(line), stopping: () => asked++ >= turns * 2, checkMs: 1, repeatMs });
  expect(lines[0]).toMatch(/^watching /);
  return lines.slice(1);
}

describe('the watchdog logs what fails, once a minute at most, and keeps going', () => {
  it('Connect not answering: the error with its cause, once, then how many times more', async () => {
    // A port nobody listens on: the one a closed server had.
    const url = await fakeConnect(200, {});
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    const lines = await run(configFor(url), 5);
    const host = url.replace('http://', '');
    expect(lines[0]).toBe(
      `cannot check the connectors: Kafka Connect is not reachable at ${url} (fetch failed): run \`npm run platform:up\` (cause: connect ECONNREFUSED ${host})`,
    );
    expect(lines[1]).toMatch(new RegExp(`^${lines[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\[[1-4] more times? since .*\\]$`));
    expect(lines.slice(2)).toEqual(['stopped']);
    // It kept turning: the heartbeat is there.
    expect(fs.existsSync(path.join(dir, 'watchdog.alive'))).toBe(true);
  });

  it('a bug of ours: its type and where, and the next turn goes on', async () => {
    // A status entry of null (of a connector not the sink's: the sink's turn first asks the registry):
    // destructuring it throws a TypeError in the loop.
    const lines = await run(configFor(await fakeConnect(200, { other: null })), 3);
    expect(lines[0]).toMatch(/^cannot check the connectors: TypeError: .*null.* \(at .*watchdog\.mjs:\d+:\d+\)\)$/);
    expect(lines.at(-1)).toBe('stopped');
    expect(lines).toHaveLength(3);
  });

  it('Connect answering with an error: the status and its message', async () => {
    const body = { error_code: 500, message: 'Request cannot be completed because a rebalance is expected' };
    const lines = await run(configFor(await fakeConnect(500, body)), 2);
    expect(lines[0]).toBe(
      'Kafka Connect answered HTTP 500 to GET /connectors: Request cannot be completed because a rebalance is expected',
    );
  });

  it('the same failure comes back in the log after the pause, with its count', async () => {
    const url = await fakeConnect(503, { message: 'starting' });
    // A pause of 20 ms for the test, a turn every millisecond or two.
    const lines = await run(configFor(url), 60, 20);
    const said = lines.filter((l) => l.startsWith('Kafka Connect answered HTTP 503 to GET /connectors: starting'));
    expect(said.length).toBe(lines.length - 1);
    expect(said.length).toBeGreaterThan(1);
    expect(said.length).toBeLessThan(60);
    expect(said.some((l) => /\[\d+ more times? since /.test(l))).toBe(true);
  });

  it('a state file that is not JSON: says so, and starts afresh', async () => {
    fs.writeFileSync(path.join(dir, 'watchdog.json'), '{"connectors":');
    const lines: string[] = [];
    await watch(configFor(await fakeConnect(200, {})), { log: (line) => lines.push(line), stopping: () => true, checkMs: 1 });
    expect(lines[0]).toBe(
      `${path.join(dir, 'watchdog.json')} is not readable JSON: starting with no record of past restarts (the file is written anew)`,
    );
  });
});
