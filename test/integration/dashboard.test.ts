// The live dashboard in a real browser: Debian's Chromium driven by
// playwright-core, against the dashboard `platform:up` starts. Rows this test
// adds use ids above the dataset's, timestamps after the year, and are removed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, loadConfig, ROOT } from '#lib/config.mjs';
import { pgClient } from '#lib/pg.mjs';
import { writeDataset } from '../../dataset/generate.js';
import { runEtl } from '../../ops/etl.mjs';
import { createDashboard, MAX_WATCHERS } from '../../dashboard/server.mjs';
import { cli, dist, freePort, tempDir, until } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** What the page keeps for tests on window.__dashboard (dashboard/public/app.js). */
type Win = { __dashboard: { ready: boolean; health: unknown; candles: number; candleMinutes: number; lastTime: number } };
const FIRST_ID = 980_000;
const SCREENSHOT = path.join(config.stateDir, 'dashboard.png');
const db = pgClient(config);
let browser: Browser;
let dir: string;

beforeAll(async () => {
  // The year landed, as `npm start` lands it (a no-op once it has): files run
  // in any order, and this one may run first on a fresh machine.
  const start = await cli('up.mjs', [], {}, 600_000);
  expect(start.code, `${start.stdout}\n${start.stderr}`).toBe(0);
  if (!fs.existsSync(CHROMIUM)) {
    // As the platform installs PostgreSQL: as root, or with passwordless sudo.
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const res = spawnSync(
      sudo[0] ?? 'apt-get',
      [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-qq', 'chromium'],
      {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        encoding: 'utf8',
      },
    );
    expect(res.status, `apt-get install chromium: ${res.stderr}`).toBe(0);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // No sandbox as root; no background traffic: the machine's network is closed.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  await db.connect();
  dir = tempDir('dashboard');
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await db.query('delete from synthetic_data where id >= $1', [FIRST_ID]);
  await runEtl(config);
  await db.end();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard', () => {
  it('draws the candles and the last close the database holds, without a console error', async () => {
    await runEtl(config);
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    let bytes = 0;
    page.on('response', async (r) => {
      bytes += (await r.body().catch(() => Buffer.alloc(0))).length;
    });
    const t0 = Date.now();
    await page.goto(config.dashboard.url);
    await page.waitForFunction(
      () => (window as unknown as Win).__dashboard?.ready && (window as unknown as Win).__dashboard?.health,
      null,
      { timeout: 30_000 },
    );
    const firstChart = Date.now() - t0;
    const shown = await page.evaluate(() => {
      const d = (window as unknown as Win).__dashboard;
      return { candles: d.candles, minutes: d.candleMinutes, lastClose: document.getElementById('last-close')?.textContent };
    });
    const {
      rows: [expected],
    } = await db.query(
      `select count(distinct date_bin(($1 || ' minutes')::interval, interval_start, timestamptz '2000-01-01 00:00:00+00'))::int as candles,
         (select last_stock_price from stock_price_summary order by interval_start desc limit 1) as last_close
       from stock_price_summary`,
      [shown.minutes],
    );
    expect(expected.candles).toBeGreaterThan(0);
    expect(shown.candles).toBe(expected.candles);
    expect(shown.lastClose).toBe(Number(expected.last_close).toLocaleString('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    expect(errors).toEqual([]);
    console.log(
      `dashboard: first chart ${firstChart} ms, page weight ${(bytes / 1024).toFixed(0)} KB (uncompressed), ${shown.candles} candles of ${shown.minutes} minutes`,
    );
    await page.close();
  });

  it('moves its counters and grows the newest candles while rows arrive at 2,000/s', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(config.dashboard.url);
    await page.waitForFunction(
      () => (window as unknown as Win).__dashboard?.ready && (window as unknown as Win).__dashboard?.health,
      null,
      { timeout: 30_000 },
    );
    const lastCandle = () => page.evaluate(() => (window as unknown as Win).__dashboard.lastTime as number);
    const before = await lastCandle();
    const {
      rows: [newest],
    } = await db.query(`select extract(epoch from max("timestamp"))::bigint * 1000 as ms from synthetic_data`);
    // 10,000 rows a minute apart, after everything the table holds: new buckets at the end.
    const n = 10_000;
    const file = path.join(dir, 'later.parquet');
    writeDataset(
      {
        id: Array.from({ length: n }, (_, i) => String(FIRST_ID + i)),
        timestamp: Float64Array.from({ length: n }, (_, i) => Number(newest.ms) + (i + 1) * 60_000),
        stock_price: Float64Array.from({ length: n }, (_, i) => 100 + (i % 50)),
        sales_trend: Float64Array.from({ length: n }, (_, i) => 200 + (i % 20)),
      },
      file,
    );
    const producer = dist('producer/cli.js', ['--file', file, '--rate', '2000'], {}, 120_000);
    const seen = new Set<string>();
    let fastest = 0;
    await until(
      async () => {
        const tiles = await page.evaluate(() => ({
          rows: document.querySelector('#t-rows [data-value]')?.textContent ?? '',
          rate: document.querySelector('#t-rate [data-value]')?.textContent ?? '',
        }));
        seen.add(tiles.rows);
        fastest = Math.max(fastest, Number(tiles.rate.replace(/,/g, '')) || 0);
        return seen.size >= 3 && fastest > 0;
      },
      60_000,
      'the row counter to change twice and rows/s to show',
    );
    const res = await producer.done;
    expect(res.code, res.stderr).toBe(0);
    // No refresh: the summary views show the new buckets computed at query time.
    await until(async () => (await lastCandle()) > before, 30_000, 'a newer candle on the page, without a reload');
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    console.log(
      `dashboard: row counter showed ${seen.size} values, rows/s up to ${fastest}; screenshot ${path.relative(config.root, SCREENSHOT)}`,
    );
    await page.close();
  }, 180_000);

  it('shows a part that is down as down, with why, while the rest still report', async () => {
    // A dashboard of its own whose Connect and Kafka are nowhere: PostgreSQL still answers.
    const lonely = loadConfig(ROOT, {
      ...process.env,
      DASHBOARD_PORT: String(await freePort()),
      CONNECT_URL: `http://127.0.0.1:${await freePort()}`,
      KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${await freePort()}`,
    });
    const dashboard = createDashboard(lonely);
    const url = await dashboard.listen();
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    try {
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as Win).__dashboard?.health, null, { timeout: 60_000 });
      const tiles = await page.evaluate(() =>
        Object.fromEntries(
          ['t-rows', 't-lag', 't-tasks'].map((id) => {
            const el = document.getElementById(id)!;
            return [id, { down: el.classList.contains('down'), text: el.querySelector('[data-value]')?.textContent ?? '' }];
          }),
        ),
      );
      expect(tiles['t-tasks']).toEqual({ down: true, text: expect.stringMatching(/^Connect down: Kafka Connect is not reachable/) });
      expect(tiles['t-lag']).toEqual({ down: true, text: expect.stringMatching(/^Kafka down: /) });
      expect(tiles['t-rows'].down).toBe(false);
      expect(Number(tiles['t-rows'].text.replace(/,/g, ''))).toBeGreaterThan(0);
    } finally {
      await page.close();
      await dashboard.close();
    }
  }, 120_000);

  it('answers bad parameters with 400 and a sentence, never database text', async () => {
    for (const q of ["from=1';select 1", 'maxBars=0', 'from=200&to=100']) {
      const res = await fetch(`${config.dashboard.url}/api/candles?${q}`);
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.error).toMatch(/must be/);
      // The input may be quoted back; the database's words never are.
      expect(JSON.stringify(body)).not.toMatch(/postgres|syntax error|ERROR:|relation|SQLSTATE/i);
    }
  });
});

/** A GET with the Host header given: node's fetch would set its own. */
function rawGet(port: number, pathname: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers, agent: false }, (res) => {
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

/** A live view of the health stream: its answer, and the time of each reading it received. */
function liveView(port: number) {
  const seen: string[] = [];
  let request: http.ClientRequest | undefined;
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    request = http.get({ host: '127.0.0.1', port, path: '/api/health/stream', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('error', () => {});
      if (res.statusCode === 200) resolve({ status: 200, body: '' });
      res.on('data', (chunk: string) => {
        text += chunk;
        if (res.statusCode !== 200) return;
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          seen.push(JSON.parse(text.slice('data: '.length, end)).at);
          text = text.slice(end + 2);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
  });
  return { answer, seen, stop: () => request?.destroy() };
}

describe("the dashboard's doors and its live views", () => {
  // A dashboard of this code on a port of its own, against the real services.
  let own: ReturnType<typeof createDashboard>;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    own = createDashboard(loadConfig(ROOT, { ...process.env, DASHBOARD_PORT: String(port) }));
    await own.listen();
  });
  afterAll(async () => {
    await own?.close();
  });

  it('answers 421 to a Host that is not its own (DNS rebinding), on the page and the API', async () => {
    for (const route of ['/', '/api/candles', '/api/health/stream']) {
      for (const host of ['rebind.attacker.test', `rebind.attacker.test:${port}`, `127.0.0.1.attacker.test:${port}`]) {
        const res = await rawGet(port, route, { host });
        expect(res.status, `${route} as ${host}`).toBe(421);
        expect(JSON.parse(res.body).error).toMatch(/^this server answers only to 127\.0\.0\.1:\d+, localhost:\d+/);
        expect(res.body).not.toMatch(/stock|candle|bars/);
      }
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost'])
      expect((await rawGet(port, '/api/candles?maxBars=10', { host })).status, host).toBe(200);
  });

  it('answers 403 to a page of another site calling its API, and serves its own', async () => {
    for (const route of ['/api/candles', '/api/health/stream', '/api/ping']) {
      const res = await rawGet(port, route, { host: `127.0.0.1:${port}`, origin: 'http://rebind.attacker.test' });
      expect(res.status, route).toBe(403);
      expect(JSON.parse(res.body).error).toMatch(/only this server's own pages may call its API/);
    }
    const ours = await rawGet(port, '/api/candles?maxBars=10', { host: `localhost:${port}`, origin: `http://localhost:${port}` });
    expect(ours.status).toBe(200);
    expect(JSON.parse(ours.body).bars.length).toBeGreaterThan(0);
  });

  it(`serves ${MAX_WATCHERS} of 40 live views opened at once with one health loop, and the rest a 503 that says why`, async () => {
    // All 40 ask during the first reading (PostgreSQL, Kafka and Connect take
    // tens of milliseconds): what used to start a loop for each.
    const views = Array.from({ length: 40 }, () => liveView(port));
    try {
      const answers = await Promise.all(views.map((v) => v.answer));
      const served = views.filter((_, i) => answers[i].status === 200);
      const busy = answers.filter((a) => a.status === 503);
      expect(served).toHaveLength(MAX_WATCHERS);
      expect(busy).toHaveLength(40 - MAX_WATCHERS);
      expect(JSON.parse(busy[0].body).error).toMatch(/live views are open, the most this dashboard serves at once/);
      const t0 = Date.now();
      await until(async () => served.every((v) => v.seen.length >= 3), 30_000, 'three readings on every live view');
      const elapsed = Date.now() - t0;
      const { loops, reads, watchers } = own.stats();
      expect({ loops, watchers }).toEqual({ loops: 1, watchers: MAX_WATCHERS });
      // One reading every 2 s, whatever the number of views: each one was sent the same readings.
      expect(reads).toBeLessThanOrEqual(Math.ceil(elapsed / 2000) + 3);
      const distinct = new Set(served.flatMap((v) => v.seen));
      expect(distinct.size).toBeLessThanOrEqual(reads);
      for (const v of served) expect(v.seen.slice(0, 3)).toEqual(served[0].seen.slice(0, 3));
      console.log(
        `dashboard: 40 live views, ${MAX_WATCHERS} served by ${loops} loop (${reads} readings in ${elapsed} ms), ${busy.length} refused`,
      );
    } finally {
      for (const v of views) v.stop();
    }
  }, 60_000);

  it('drops a live view that stops reading instead of buffering for it, and serves the others on', async () => {
    // The kernel buffers megabytes for a socket before a write waits, hours
    // of 2-second readings: this dashboard's listening socket has a small
    // send buffer (SO_SNDBUF, set by Python, which Node cannot; accepted
    // sockets inherit it) and reads health every 20 ms, so the view that
    // never reads (a small receive buffer too) falls behind in seconds.
    const dir = tempDir('dashboard-slow');
    const serve = path.join(dir, 'serve.mjs');
    fs.writeFileSync(
      serve,
      [
        `import { loadConfig, ROOT } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'lib/config.mjs')).href)};`,
        `import { createDashboard } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dashboard/server.mjs')).href)};`,
        'const dashboard = createDashboard(loadConfig(ROOT, process.env), { healthEveryMs: 20, log: (line) => console.log(line) });',
        "dashboard.server.listen({ fd: Number(process.argv[2]) }, () => console.log('listening'));",
        "process.on('SIGTERM', () => void dashboard.close().then(() => process.exit(0)));",
      ].join('\n'),
    );
    const launch = [
      'import os, socket, sys',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)',
      "s.bind(('127.0.0.1', 0))",
      's.listen(16)',
      's.set_inheritable(True)',
      "os.environ['DASHBOARD_PORT'] = str(s.getsockname()[1])",
      'print(s.getsockname()[1], flush=True)',
      'os.execv(sys.argv[1], sys.argv[1:] + [str(s.fileno())])',
    ].join('\n');
    // Asks for the stream and reads nothing until told to; then reads what is
    // there and says whether the server closed the stream.
    const stall = [
      'import socket, sys, time',
      'port = int(sys.argv[1])',
      'c = socket.socket()',
      'c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
      "c.connect(('127.0.0.1', port))",
      "c.sendall(('GET /api/health/stream HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\n\\r\\n' % port).encode())",
      'sys.stdin.readline()',
      'c.settimeout(1)',
      'got, end = 0, time.time() + 10',
      'while time.time() < end:',
      '    try:',
      '        data = c.recv(65536)',
      '    except ConnectionResetError:',
      "        print('closed after %d bytes' % got); sys.exit(0)",
      '    except socket.timeout:',
      '        continue',
      '    if not data:',
      "        print('closed after %d bytes' % got); sys.exit(0)",
      '    got += len(data)',
      "print('still open after %d bytes' % got)",
    ].join('\n');
    const server = spawn('python3', ['-c', launch, process.execPath, serve], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: string[] = [];
    readline.createInterface({ input: server.stdout }).on('line', (line) => out.push(line));
    let reader: ReturnType<typeof liveView> | undefined;
    try {
      const at = Number(await until(async () => out[0], 15_000, 'the slow-socket dashboard to bind'));
      await until(async () => out.includes('listening'), 30_000, 'the slow-socket dashboard to listen');
      const stalled = spawn('python3', ['-c', stall, String(at)], { stdio: ['pipe', 'pipe', 'inherit'] });
      let verdict = '';
      stalled.stdout.on('data', (chunk) => {
        verdict += chunk;
      });
      const stalledExit = new Promise((resolve) => stalled.on('exit', resolve));
      reader = liveView(at);
      expect((await reader.answer).status).toBe(200);
      await until(
        async () => out.some((l) => l.includes('dropped a live view that stopped reading')),
        90_000,
        'the dashboard to drop the view that does not read',
      );
      const before = reader.seen.length;
      await until(async () => reader && reader.seen.length > before + 3, 15_000, 'readings on for the view that reads');
      stalled.stdin.end('read\n');
      await stalledExit;
      expect(verdict.trim()).toMatch(/^closed after \d+ bytes$/);
      console.log(`dashboard: the view that stopped reading was dropped (${verdict.trim()}); the other had ${reader.seen.length} readings`);
    } finally {
      reader?.stop();
      server.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
