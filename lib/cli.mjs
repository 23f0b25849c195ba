// @ts-check
// The command line: flags in, aligned tables out.
import { parseArgs } from 'node:util';
import { UsageError } from './errors.mjs';

/**
 * Renders rows as an aligned text table.
 * @param {string[]} header @param {string[][]} rows
 */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (/** @type {string[]} */ cells) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * node:util parseArgs, whose complaints (an unknown flag, a missing value)
 * become usage errors: one line and exit code 2, not a stack trace.
 * @template {import('node:util').ParseArgsConfig} T
 * @param {T} options @param {string} [usage] appended on a line of its own
 * @returns {ReturnType<typeof parseArgs<T>>}
 */
export function parseFlags(options, usage) {
  try {
    return parseArgs(options);
  } catch (err) {
    throw new UsageError(usage ? `${/** @type {Error} */ (err).message}\n${usage}` : /** @type {Error} */ (err).message);
  }
}

/**
 * A value as a table shows it: times as ISO-8601, fractions to at most 4
 * decimals (102.65500000000002 shows as 102.655), the rest as text. Pure.
 * @param {unknown} v
 */
export const cell = (v) =>
  v instanceof Date ? v.toISOString() : typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toFixed(4))) : String(v);
