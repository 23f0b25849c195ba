// The live dashboard in a real browser: Debian's Chromium driven by
// playwright-core, against the dashboard `platform:up` starts. Rows this test
// adds use ids above the dataset's, timestamps after the year, and are removed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, loadConfig, ROOT } from '#lib/config.mjs';
import { pgClient } from '#lib/pg.mjs';
import { writeDataset } from '../../dataset/generate.js';
import { runEtl } from '../../ops/etl.mjs';
import { createDashboard } from '../../dashboard/server.mjs';
import { dist, freePort, pipelineReady, tempDir, until } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** What the page keeps for tests on window.__dashboard (dashboard/public/app.js). */
type Win = { __dashboard: { ready: boolean; health: unknown; candles: number; candleMinutes: number; lastTime: number } };
const FIRST_ID = 980_000;
const SCREENSHOT = path.join(config.stateDir, 'dashboard.png');
const db = pgClient(config);
let browser: Browser;
let dir: string;

beforeAll(async () => {
  await pipelineReady();
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
