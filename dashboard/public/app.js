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

// The whole table at a coarse width (base), and the zoomed-in part at a finer
// one (detail) when the view holds few coarse bars: the chart draws base
// outside the detail's range and detail inside, so the whole year stays there
// to pan to while the part in view is exact.
const ORIGIN = 946684800; // the server's bucket origin, 2000-01-01, in seconds
const FEW_BARS = 300;
let base = null;
let detail = null;
let applying = false;
const barCount = () => Math.max(300, Math.min(5000, Math.round(candleEl.clientWidth * 1.5)));

function merged() {
  const c = !detail
    ? base.candles.bars
    : [
        ...base.candles.bars.filter((b) => b.time < detail.from),
        ...detail.candles.bars,
        ...base.candles.bars.filter((b) => b.time >= detail.to),
      ];
  const cols = [[], [], [], []];
  const add = (s, keep) => {
    s.time.forEach((t, i) => {
      if (!keep(t)) return;
      cols[0].push(t);
      cols[1].push(s.avg[i]);
      cols[2].push(s.min[i]);
      cols[3].push(s.max[i]);
    });
  };
  if (!detail) add(base.sales, () => true);
  else {
    add(base.sales, (t) => t < detail.from);
    add(detail.sales, () => true);
    add(base.sales, (t) => t >= detail.to);
  }
  return { candles: c, sales: cols };
}

function draw() {
  const view = chart.timeScale().getVisibleRange();
  const { candles, sales: band } = merged();
  applying = true;
  series.setData(candles);
  sales.setData(band);
  if (view && state.fitted) chart.timeScale().setVisibleRange(view);
  else {
    chart.timeScale().fitContent();
    state.fitted = true;
  }
  applying = false;
  // uPlot rescales to its data on setData: back to the candles' view.
  const shown = chart.timeScale().getVisibleRange();
  if (shown) sales.setScale('x', { min: Number(shown.from), max: Number(shown.to) });
  state.candles = candles.length;
  state.candleMinutes = (detail ?? base).candles.minutes;
  const width = (detail ?? base).candles.minutes;
  document.getElementById('candle-width').textContent = width > 10 ? `(merged to ${width} minutes at this zoom)` : '';
  const last = base.candles.bars.at(-1);
  state.lastTime = last?.time ?? null;
  if (last) {
    state.lastClose = last.close;
    setTile('t-close', fmt(last.close, 2));
  }
}

const fetchRange = async (from, to) => {
  const q = from === null ? `maxBars=${barCount()}` : `from=${from}&to=${to}&maxBars=${barCount()}`;
  const [candles, band] = await Promise.all([getJson(`/api/candles?${q}`), getJson(`/api/sales?${q}`)]);
  return { from, to, candles, sales: band };
};

/** Fetches the base and, when zoomed in, the detail around the view; then draws. */
async function refresh() {
  try {
    base = await fetchRange(null, null);
    const view = chart.timeScale().getVisibleRange();
    const step = base.candles.minutes * 60;
    if (view && state.fitted && (Number(view.to) - Number(view.from)) / step < FEW_BARS) {
      const span = Number(view.to) - Number(view.from);
      const from = ORIGIN + Math.floor((Number(view.from) - span - ORIGIN) / step) * step;
      const to = ORIGIN + Math.ceil((Number(view.to) + span - ORIGIN) / step) * step;
      detail = detail && detail.from === from && detail.to === to && !state.live ? detail : await fetchRange(from, to);
    } else detail = null;
    draw();
    state.ready = true;
  } catch (err) {
    document.getElementById('note').textContent = `data: ${err.message}`;
  }
}

let running = null;
let again = false;
/** One refresh at a time; a request meanwhile runs once more after it. */
function schedule() {
  if (running) {
    again = true;
    return;
  }
  running = refresh().finally(() => {
    running = null;
    if (again) {
      again = false;
      schedule();
    }
  });
}

// Zoom and pan: the sales axis follows at once; finer data follows the view (debounced).
let debounce = null;
chart.timeScale().subscribeVisibleTimeRangeChange((range) => {
  if (!range) return;
  sales.setScale('x', { min: Number(range.from), max: Number(range.to) });
  if (applying) return;
  clearTimeout(debounce);
  debounce = setTimeout(schedule, 300);
});

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

// New rows or a summary refresh: the view again, so the newest candles grow without a reload.
let lastSeen = null;
const events = new EventSource('/api/health/stream');
events.onmessage = (e) => {
  const h = JSON.parse(e.data);
  showHealth(h);
  const seen = h.postgres.ok ? `${h.postgres.value.rows} ${h.postgres.value.summaryRefreshed}` : null;
  if (state.ready && seen !== null && lastSeen !== null && seen !== lastSeen) {
    state.live = true;
    schedule();
  }
  lastSeen = seen;
};
events.onerror = () => setTile('t-rows', 'dashboard server down', true);

schedule();
