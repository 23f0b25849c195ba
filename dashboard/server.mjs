// @ts-check
// The dashboard's HTTP server (node:http, 127.0.0.1 only): the page, the two
// chart libraries from node_modules (never a CDN: users may be offline), the
// chart data as JSON and the pipeline's health as server-sent events. One
// health reader serves every open page, and only while one is open.
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { readHealth } from './health.mjs';
import { parseRange } from './params.mjs';
import { candles, salesBand } from './queries.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const HEALTH_EVERY_MS = 2000;
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
 * @param {Config} config @param {{ log?: (line: string) => void }} [opts]
 * @returns {{ server: http.Server, listen: () => Promise<string>, close: () => Promise<void> }}
 */
export function createDashboard(config, { log = () => {} } = {}) {
  const files = staticFiles();
  const { user, password } = config.pg.roles.reader;
  const pool = new pg.Pool({ host: config.pg.host, port: config.pg.port, database: config.pg.database, user, password, max: 4 });
  pool.on('error', () => {});
  /** @type {Set<http.ServerResponse>} */
  const watchers = new Set();
  /** @type {NodeJS.Timeout | null} */
  let timer = null;
  /** @type {{ at: number, rows: number } | null} */
  let previous = null;
  let latest = '';

  const tick = async () => {
    const health = await readHealth(config, previous);
    if (health.postgres.ok) previous = { at: Date.parse(health.at), rows: health.postgres.value.rows };
    latest = JSON.stringify(health);
    for (const res of watchers) res.write(`data: ${latest}\n\n`);
  };
  const loop = async () => {
    await tick().catch((err) => log(`health: ${err.message}`));
    timer = watchers.size > 0 ? setTimeout(loop, HEALTH_EVERY_MS) : null;
  };

  /** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
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
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      if (latest) res.write(`data: ${latest}\n\n`);
      watchers.add(res);
      req.on('close', () => watchers.delete(res));
      if (!timer) void loop();
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
      if (timer) clearTimeout(timer);
      for (const res of watchers) res.end();
      await new Promise((resolve) => server.close(resolve));
      await pool.end().catch(() => {});
    },
  };
}
