// @ts-check
// The dashboard's query parameters, checked before any SQL sees them: a bad
// one is a 400 with a sentence a person can act on, never database text.
// Pure, so every rule has a test.

/** Bars a chart can draw apart on a wide screen; more is wasted bandwidth. */
export const MAX_BARS = 5000;
const DEFAULT_BARS = 1500;
/** The summaries' bucket widths, in minutes. */
export const STOCK_MINUTES = 10;
export const SALES_MINUTES = 20;

/**
 * @param {URLSearchParams} query
 * @returns {{ ok: true, from: Date | null, to: Date | null, maxBars: number } | { ok: false, error: string }}
 */
export function parseRange(query) {
  /** @param {string} name @returns {{ value: Date | null } | { error: string }} */
  const time = (name) => {
    const raw = query.get(name);
    if (raw === null || raw === '') return { value: null };
    // Seconds since 1970 (what the charts use) or ISO-8601.
    const ms = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) * 1000 : Date.parse(raw);
    if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15)
      return { error: `${name} must be a time: seconds since 1970 or ISO-8601, not ${JSON.stringify(raw.slice(0, 40))}` };
    return { value: new Date(ms) };
  };
  const from = time('from');
  if ('error' in from) return { ok: false, error: from.error };
  const to = time('to');
  if ('error' in to) return { ok: false, error: to.error };
  if (from.value && to.value && from.value >= to.value) return { ok: false, error: 'from must be before to' };
  const rawBars = query.get('maxBars');
  let maxBars = DEFAULT_BARS;
  if (rawBars !== null && rawBars !== '') {
    maxBars = Number(rawBars);
    if (!Number.isInteger(maxBars) || maxBars < 10 || maxBars > MAX_BARS) {
      return { ok: false, error: `maxBars must be a whole number from 10 to ${MAX_BARS}` };
    }
  }
  return { ok: true, from: from.value, to: to.value, maxBars };
}

/**
 * The bucket width (minutes) that shows `spanMs` in at most `maxBars` bars:
 * a whole multiple of the summary's own width, so each bar merges whole
 * buckets. Pure.
 * @param {number} spanMs @param {number} maxBars @param {number} baseMinutes
 */
export function bucketMinutes(spanMs, maxBars, baseMinutes) {
  const needed = spanMs / 60_000 / maxBars;
  return Math.max(1, Math.ceil(needed / baseMinutes)) * baseMinutes;
}
