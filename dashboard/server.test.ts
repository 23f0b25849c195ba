// The dashboard's HTTP rules on real sockets, with a health reader of the
// test's own (no PostgreSQL, Kafka or Connect needed): which requests it
// refuses, how many health loops its live views cost, and what it does with
// a view that stops reading. test/integration/dashboard.test.ts does the
// same against the real services.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '#lib/config.mjs';
import { createDashboard, MAX_WATCHERS } from './server.mjs';

const defaults = parseEnv(fs.readFileSync(path.join(import.meta.dirname, '..', '.env'), 'utf8'));

/** A free port, asked of the kernel. */
async function freePort() {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

type Reading = { at: string; postgres: { ok: true; value: { rows: number; pad?: string } } };

/** A dashboard on a free port whose health reader counts its calls and takes `readMs`. */
async function start({ readMs = 0, pad = 0, healthEveryMs = 50 } = {}) {
  const port = await freePort();
  const config = buildConfig(
    defaults,
    {
      PLATFORM: 'external',
      KAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:1',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:1',
      CONNECT_URL: 'http://127.0.0.1:1',
      DASHBOARD_PORT: String(port),
    },
    '/repo',
  );
  let n = 0;
  const read = async (): Promise<Reading> => {
    n += 1;
    await new Promise((resolve) => setTimeout(resolve, readMs));
    return {
      at: new Date(Date.now() + n).toISOString(),
      postgres: { ok: true, value: { rows: n, ...(pad ? { pad: 'x'.repeat(pad) } : {}) } },
    };
  };
  const lines: string[] = [];
  const dashboard = createDashboard(config, { healthEveryMs, read: read as never, log: (line) => lines.push(line) });
  await dashboard.listen();
  open.push(dashboard);
  return { dashboard, port, lines };
}
const open: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

/** A GET with the headers given (node's fetch would set Host itself). */
function get(port: number, pathname: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A live view: its status, and the readings it has received so far. */
function watch(port: number) {
  const seen: string[] = [];
  let buffer = '';
  let request: http.ClientRequest;
  const status = new Promise<{ status: number; body: string; res: http.IncomingMessage }>((resolve, reject) => {
    request = http.get({ host: '127.0.0.1', port, path: '/api/health/stream', agent: false }, (res) => {
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, res }));
        return;
      }
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
          seen.push(JSON.parse(buffer.slice('data: '.length, at)).at);
          buffer = buffer.slice(at + 2);
        }
      });
      res.on('error', () => {});
      resolve({ status: 200, body: '', res });
    });
    request.on('error', reject);
  });
  return { status, seen, stop: () => request.destroy() };
}

const until = async (probe: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('the dashboard server', () => {
  it('answers 421 to a foreign Host on every route, and 403 to a foreign Origin on its API', async () => {
    const { port } = await start();
    for (const route of ['/', '/app.js', '/api/ping', '/api/candles', '/api/health/stream', '/nowhere']) {
      for (const host of ['rebind.attacker.test', `127.0.0.1.attacker.test:${port}`, `localhost:${port + 1}`]) {
        const res = await get(port, route, { host });
        expect(res.status, `${route} as ${host}`).toBe(421);
        expect(JSON.parse(res.body).error).toMatch(/^this server answers only to 127\.0\.0\.1:/);
        expect(res.body.trim().split('\n')).toHaveLength(1);
      }
    }
    for (const origin of ['http://rebind.attacker.test', `http://localhost:${port + 1}`, 'null']) {
      const res = await get(port, '/api/ping', { origin });
      expect(res.status, origin).toBe(403);
      expect(JSON.parse(res.body).error).toMatch(/only this server's own pages may call its API/);
    }
    expect((await get(port, '/api/ping', { host: `localhost:${port}`, origin: `http://localhost:${port}` })).status).toBe(200);
    expect((await get(port, '/api/ping', { host: 'LOCALHOST' })).status).toBe(200);
    // The page itself carries no data: another site may link to it.
    expect((await get(port, '/', { origin: 'http://rebind.attacker.test' })).status).toBe(200);
  });

  it(`serves ${MAX_WATCHERS} live views with one health loop, and refuses more with 503`, async () => {
    // The first reading is slow: every view connects while it is in flight.
    const { dashboard, port } = await start({ readMs: 150, healthEveryMs: 100 });
    const views = Array.from({ length: 40 }, () => watch(port));
    const answers = await Promise.all(views.map((v) => v.status));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(MAX_WATCHERS);
    const busy = answers.filter((a) => a.status === 503);
    expect(busy).toHaveLength(40 - MAX_WATCHERS);
    expect(JSON.parse(busy[0].body).error).toMatch(new RegExp(`^${MAX_WATCHERS} live views are open, the most this dashboard serves`));
    const served = views.filter((_, i) => answers[i].status === 200);
    const t0 = Date.now();
    await until(() => served.every((v) => v.seen.length >= 3), 10_000, 'three readings on every view');
    const elapsed = Date.now() - t0;
    const stats = dashboard.stats();
    expect(stats).toMatchObject({ watchers: MAX_WATCHERS, loops: 1, busy: 40 - MAX_WATCHERS, dropped: 0 });
    // One loop: a reading every 250 ms at most (150 to read, 100 between).
    expect(stats.reads).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 4);
    // Every view was sent the same readings.
    const first = served[0].seen.slice(0, 3);
    for (const v of served) expect(v.seen.slice(0, 3)).toEqual(first);
    for (const v of views) v.stop();
  });

  it('stops reading health when the last view leaves, and starts one loop again for the next', async () => {
    const { dashboard, port } = await start({ healthEveryMs: 20 });
    const a = watch(port);
    await a.status;
    await until(() => a.seen.length >= 2, 5000, 'two readings');
    a.stop();
    await until(() => dashboard.stats().watchers === 0, 5000, 'the view to leave');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const reads = dashboard.stats().reads;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(dashboard.stats().reads).toBe(reads);
    const b = watch(port);
    await b.status;
    await until(() => b.seen.length >= 2, 5000, 'two readings on the next view');
    expect(dashboard.stats().loops).toBe(2);
    b.stop();
  });

  it('drops a view that stops reading, and keeps serving the others', async () => {
    // Big readings fill the kernel's buffers in a few ticks.
    const { dashboard, port, lines } = await start({ pad: 256 * 1024, healthEveryMs: 10 });
    const slow = watch(port);
    const { res } = await slow.status;
    res.pause();
    res.socket.pause();
    const reader = watch(port);
    await reader.status;
    await until(() => dashboard.stats().dropped === 1, 30_000, 'the slow view to be dropped');
    expect(lines).toContain('health stream: dropped a live view that stopped reading');
    expect(dashboard.stats().watchers).toBe(1);
    const before = reader.seen.length;
    await until(() => reader.seen.length > before + 2, 10_000, 'more readings for the view that reads');
    // The slow view, reading again, finds its stream cut rather than served on.
    const closed = new Promise((resolve) => res.socket.once('close', resolve));
    res.socket.resume();
    res.resume();
    await closed;
    reader.stop();
  }, 60_000);
});
