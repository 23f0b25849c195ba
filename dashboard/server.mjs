// @ts-check
// The dashboard's HTTP server (node:http, 127.0.0.1 only): the page, the two
// chart libraries from node_modules (never a CDN: users may be offline), the
// chart data as JSON and the pipeline's health as server-sent events. One
// health reader serves every open page, and only while one is open.
//
// A page on another site can reach 127.0.0.1 too (DNS rebinding, or a plain
// cross-site request): every route checks the Host header and the API the
// Origin (lib/http-guard.mjs). Live views are capped, and one that stops
// reading is dropped: nothing here grows with what a client does not take.
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { pgPassword, pgUser } from '#lib/credentials.mjs';
import { guardFor, refusal } from '#lib/http-guard.mjs';
import { pgSsl } from '#lib/pg.mjs';
import { readHealth } from './health.mjs';
import { parseRange } from './params.mjs';
import { candles, salesBand } from './queries.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const HEALTH_EVERY_MS = 2000;
/**
 * Live views at once: a browser holds at most six connections per site, so
 * more than this is many browsers or a script, and each costs a socket.
 */
export const MAX_WATCHERS = 32;
/**
 * What one live view may leave unsent in our memory (the kernel holds its
 * own buffers first): a view this far behind has stopped reading; it is
 * dropped, and reconnects (EventSource does) when it reads again.
 */
export const MAX_BUFFERED_BYTES = 64 * 1024;
const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);

/** What the server hands out as files: read once, at start. */
function staticFiles() {
  const lwc = path.join(
    path.dirname(require.resolve('lightweight-charts/package.json')),
    'dist/lightweight-charts.standalone.production.js',
  );
  const uplot = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  /** @type {Record<string, [string, string]>} route -> [file, content type] */
  const files = {
    '/': [path.join(here, 'public/index.html'), 'text/html; charset=utf-8'],
    '/app.js': [path.join(here, 'public/app.js'), 'text/javascript; charset=utf-8'],
    '/vendor/lightweight-charts.js': [lwc, 'text/javascript; charset=utf-8'],
    '/vendor/uplot.js': [path.join(uplot, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    '/vendor/uplot.css': [path.join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8'],
  };
  return new Map(Object.entries(files).map(([route, [file, type]]) => [route, { body: fs.readFileSync(file), type }]));
}

/**
 * @typedef {object} DashboardOptions
 * @property {(line: string) => void} [log]
 * @property {number} [healthEveryMs] the pause between two health readings
 * @property {number} [maxWatchers] live views at once
 * @property {typeof readHealth} [read] the health reader (unit tests give their own)
 */

/**
 * @typedef {object} DashboardStats what the server has done, for tests and logs
 * @property {number} watchers live views open now
 * @property {number} loops health loops started (one per period with views open)
 * @property {number} reads health readings made
 * @property {number} dropped live views dropped because they stopped reading
 * @property {number} busy live views refused because MAX_WATCHERS were open
 */

/**
 * @param {Config} config @param {DashboardOptions} [opts]
 * @returns {{ server: http.Server, listen: () => Promise<string>, close: () => Promise<void>, stats: () => DashboardStats }}
 */
export function createDashboard(
  config,
  { log = () => {}, healthEveryMs = HEALTH_EVERY_MS, maxWatchers = MAX_WATCHERS, read = readHealth } = {},
) {
  const files = staticFiles();
  const guard = guardFor(config.dashboard.host, config.dashboard.port);
  const pool = new pg.Pool({
    host: config.pg.host,
    port: config.pg.port,
    database: config.pg.database,
    user: pgUser(config, 'reader'),
    password: pgPassword(config, 'reader'),
    ssl: pgSsl(config.pg.sslmode),
    max: 4,
    // A database that does not answer is a 503 in seconds, not a page that hangs.
    connectionTimeoutMillis: 5000,
    statement_timeout: 10_000,
    query_timeout: 12_000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', () => {});
  /** @type {Set<http.ServerResponse>} */
  const watchers = new Set();
  /** From the loop's start until it sees no watcher: a view that opens meanwhile joins it, never starts another. */
  let running = false;
  let closed = false;
  /** @type {NodeJS.Timeout | null} */
  let timer = null;
  /** @type {{ at: number, rows: number } | null} */
  let previous = null;
  let latest = '';
  const counts = { loops: 0, reads: 0, dropped: 0, busy: 0 };

  /**
   * Sends a reading, or drops the view when the previous one is still in our
   * buffer (the kernel's were full already): a view that reads catches up
   * within a period; one that does not would grow the buffer every period.
   * @param {http.ServerResponse} res @param {string} data
   */
  const send = (res, data) => {
    if (res.writableNeedDrain || res.writableLength > MAX_BUFFERED_BYTES) {
      watchers.delete(res);
      counts.dropped += 1;
      log('health stream: dropped a live view that stopped reading');
      res.destroy();
      return;
    }
    res.write(`data: ${data}\n\n`);
  };

  const tick = async () => {
    counts.reads += 1;
    const health = await read(config, pool, previous);
    if (health.postgres.ok) previous = { at: Date.parse(health.at), rows: health.postgres.value.rows };
    latest = JSON.stringify(health);
    for (const res of watchers) send(res, latest);
  };
  const loop = async () => {
    timer = null;
    await tick().catch((err) => log(`health: ${err.message}`));
    if (watchers.size > 0 && !closed) timer = setTimeout(loop, healthEveryMs);
    else running = false;
  };
  const startLoop = () => {
    if (running || closed) return;
    running = true;
    counts.loops += 1;
    void loop();
  };

  /** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const refused = refusal(req.headers, guard, { checkOrigin: url.pathname.startsWith('/api/') });
    if (refused) return json(res, refused.status, { error: refused.error });
    if (req.method !== 'GET') return json(res, 405, { error: 'only GET' });
    const file = files.get(url.pathname);
    if (file) {
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache' });
      return res.end(file.body);
    }
    if (url.pathname === '/favicon.ico') return res.writeHead(204).end();
    // What `platform:up` and `npm run dashboard` ask to know the port is ours.
    if (url.pathname === '/api/ping') return json(res, 200, { dashboard: 'kafka-pg-pipeline' });
    if (url.pathname === '/api/health/stream') {
      if (watchers.size >= maxWatchers) {
        counts.busy += 1;
        res.setHeader('retry-after', '10');
        return json(res, 503, {
          error: `${maxWatchers} live views are open, the most this dashboard serves at once: close a dashboard tab (or a script that holds the stream) and reload`,
        });
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      watchers.add(res);
      req.on('close', () => watchers.delete(res));
      if (latest) send(res, latest);
      startLoop();
      return;
    }
    if (url.pathname === '/api/candles' || url.pathname === '/api/sales') {
      const range = parseRange(url.searchParams);
      if (!range.ok) return json(res, 400, { error: range.error });
      try {
        return json(res, 200, url.pathname === '/api/candles' ? await candles(pool, range) : await salesBand(pool, range));
      } catch (err) {
        // Never the database's own text: it may quote SQL. What to do instead.
        log(`${url.pathname}: ${/** @type {Error} */ (err).message}`);
        return json(res, 503, { error: 'PostgreSQL did not answer: is the platform up? (`npm run status`)' });
      }
    }
    return json(res, 404, { error: `no such page: ${url.pathname}` });
  });

  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.dashboard.port, config.dashboard.host, () => resolve(config.dashboard.url));
      }),
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const res of watchers) res.end();
      watchers.clear();
      const done = new Promise((resolve) => server.close(resolve));
      // A view that stopped reading would hold close() forever: its socket goes too.
      server.closeAllConnections();
      await done;
      await pool.end().catch(() => {});
    },
    stats: () => ({ watchers: watchers.size, ...counts }),
  };
}
