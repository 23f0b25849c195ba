// The dashboard page: candles (lightweight-charts) and the sales band (uPlot)
// on one time axis, data fetched for the visible range (the server merges
// buckets when the range is wide), health from server-sent events.
/* global LightweightCharts, uPlot */
const state = { ready: false, candles: 0, lastClose: null, health: null };
window.__dashboard = state;

const fmt = (n, digits = 0) =>
  n === null || n === undefined ? '-' : Number(n).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const setTile = (id, text, down = false) => {
  const tile = document.getElementById(id);
  tile.querySelector('[data-value]').textContent = text;
  tile.classList.toggle('down', down);
};

const candleEl = document.getElementById('candles');
const chart = LightweightCharts.createChart(candleEl, {
  autoSize: true,
  timeScale: { timeVisible: true, secondsVisible: false },
  localization: { priceFormatter: (p) => p.toFixed(2) },
});
const series = chart.addSeries(LightweightCharts.CandlestickSeries, {});

const salesEl = document.getElementById('sales');
const sales = new uPlot(
  {
    width: salesEl.clientWidth || 900,
    height: 220,
    scales: { x: { time: true } },
    series: [
      {},
      { label: 'avg', stroke: '#1f6feb', width: 1 },
      { label: 'min', stroke: 'rgba(31,111,235,.25)' },
      { label: 'max', stroke: 'rgba(31,111,235,.25)' },
    ],
    bands: [{ series: [3, 2], fill: 'rgba(31,111,235,.12)' }],
    axes: [{}, { values: (_u, v) => v.map((x) => x.toFixed(0)) }],
  },
  [[], [], [], []],
  salesEl,
);
window.addEventListener('resize', () => sales.setSize({ width: salesEl.clientWidth, height: 220 }));

async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ?? res.statusText);
  return body;
}

let loading = null;
let wanted = null;
/** Loads candles and sales for [from, to] (seconds), or the whole table. */
async function load(range) {
  wanted = range;
  if (loading) return;
  while (wanted !== undefined) {
    const r = wanted;
    wanted = undefined;
    const bars = Math.max(200, Math.min(5000, Math.round(candleEl.clientWidth * 1.5)));
    const q = r ? `from=${Math.floor(r.from)}&to=${Math.ceil(r.to)}&maxBars=${bars}` : `maxBars=${bars}`;
    loading = Promise.all([getJson(`/api/candles?${q}`), getJson(`/api/sales?${q}`)]);
    try {
      const [c, s] = await loading;
      series.setData(c.bars);
      sales.setData([s.time, s.avg, s.min, s.max]);
      state.candles = c.bars.length;
      state.candleMinutes = c.minutes;
      document.getElementById('candle-width').textContent = c.minutes > 10 ? `(merged to ${c.minutes} minutes at this zoom)` : '';
      document.getElementById('sales-width').textContent = s.minutes > 20 ? `(merged to ${s.minutes} minutes at this zoom)` : '';
      const last = c.bars.at(-1);
      if (last && !r) {
        state.lastClose = last.close;
        setTile('t-close', fmt(last.close, 2));
      }
      if (!r && !state.fitted) {
        chart.timeScale().fitContent();
        state.fitted = true;
      }
    } catch (err) {
      document.getElementById('note').textContent = `data: ${err.message}`;
    } finally {
      loading = null;
    }
  }
  state.ready = true;
}

// Zoom and pan: fetch the visible range again (debounced), and keep the sales axis in step.
let debounce = null;
chart.timeScale().subscribeVisibleTimeRangeChange((range) => {
  if (!range) return;
  sales.setScale('x', { min: Number(range.from), max: Number(range.to) });
  clearTimeout(debounce);
  debounce = setTimeout(() => {
    const span = Number(range.to) - Number(range.from);
    if (state.ready) void loadVisible(Number(range.from) - span, Number(range.to) + span);
  }, 400);
});
let visible = null;
async function loadVisible(from, to) {
  if (visible && Math.abs(visible.from - from) < 1 && Math.abs(visible.to - to) < 1) return;
  visible = { from, to };
  await load({ from, to });
}

function showHealth(h) {
  state.health = h;
  const pgOk = h.postgres.ok;
  const p = pgOk ? h.postgres.value : null;
  setTile('t-rows', pgOk ? fmt(p.rows) : `down: ${h.postgres.error}`, !pgOk);
  setTile('t-rate', h.rowsPerSecond === null ? '-' : fmt(h.rowsPerSecond), !pgOk);
  setTile(
    't-latency',
    p?.latencyMs ? `${fmt(p.latencyMs.p50)} / ${fmt(p.latencyMs.p99)} ms` : pgOk ? 'no rows this minute' : 'down',
    !pgOk,
  );
  setTile(
    't-fresh',
    p?.summaryBehindMinutes === null || !p ? '-' : p.summaryBehindMinutes < 1 ? 'up to date' : `${fmt(p.summaryBehindMinutes)} min`,
    !pgOk,
  );
  const k = h.kafka.ok ? h.kafka.value : null;
  setTile('t-lag', k ? fmt(k.lag) : `Kafka down: ${h.kafka.error}`, !k);
  setTile('t-dlq', k ? `${fmt(k.dlq)} / ${fmt(k.rejected)}` : 'Kafka down', !k || k.dlq > 0 || k.rejected > 0);
  const c = h.connector.ok ? h.connector.value : null;
  setTile(
    't-tasks',
    c ? c.tasks.map((t) => `${t.id}:${t.state}`).join(' ') || c.state : `Connect down: ${h.connector.error}`,
    c?.state !== 'running',
  );
}

let lastRows = null;
const events = new EventSource('/api/health/stream');
events.onmessage = (e) => {
  const h = JSON.parse(e.data);
  showHealth(h);
  // New rows: the newest candles grow, without a reload.
  const rows = h.postgres.ok ? h.postgres.value.rows : null;
  if (state.ready && rows !== null && rows !== lastRows && lastRows !== null) void refreshNewest();
  lastRows = rows;
};
events.onerror = () => setTile('t-rows', 'dashboard server down', true);

// The view again, as it is zoomed: new buckets appear and the newest grow.
const refreshNewest = () => load(visible);

void load(null);
