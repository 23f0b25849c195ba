// @ts-check
// Lines for the log of a process that runs for weeks (the watchdog): an error
// as one line with its causes, and the same line at most once a minute with
// how often it came meanwhile, so that a failure that lasts a night is seen
// without burying the rest of the log.
import { UserError } from '#lib/errors.mjs';

/** Longest line an error becomes: a stack trace or an HTML error page is cut. */
export const LONGEST_LINE = 1000;

/** @param {string} text */
const oneLine = (text) => text.replace(/\s*\n\s*/g, ' | ').trim();

/**
 * What one error in a cause chain says: its message (led by its code when
 * the message does not say it), or for an AggregateError without a message
 * (a connection refused on both ::1 and 127.0.0.1) its first error's.
 * @param {unknown} err
 */
function said(err) {
  if (!(err instanceof Error)) return String(err);
  const e = /** @type {Error & { code?: unknown, errors?: unknown[] }} */ (err);
  const message = e.message || (e.errors?.[0] instanceof Error ? e.errors[0].message : '');
  const code = typeof e.code === 'string' ? e.code : '';
  if (!message) return code || e.name;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * An error as one line: its message, then each cause the line does not
 * already quote. One we did not foresee (anything but a UserError) is a bug
 * of ours: its type and the frame it was thrown in are kept. Pure.
 * @param {unknown} err
 */
export function errorLine(err) {
  let line = said(err);
  if (err instanceof Error && !(err instanceof UserError)) {
    const frame = err.stack
      ?.split('\n')
      .find((l) => /^\s+at /.test(l))
      ?.trim();
    line = `${err.name}: ${line}${frame ? ` (${frame})` : ''}`;
  }
  let cause = err instanceof Error ? err.cause : undefined;
  for (let depth = 0; cause !== undefined && cause !== null && depth < 5; depth++) {
    const text = said(cause);
    if (text && !line.includes(text)) line += ` (cause: ${text})`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  line = oneLine(line);
  return line.length > LONGEST_LINE ? `${line.slice(0, LONGEST_LINE)}… [${line.length - LONGEST_LINE} more characters]` : line;
}

/**
 * A log that writes each distinct line at once, then the same line at most
 * once every `everyMs`, saying how many more times it came in between.
 * `flush` tells the count of a line that stopped coming (none for `everyMs`),
 * or of every line (`all`, at the end): call it each turn of a loop.
 * @param {(line: string) => void} log
 * @param {{ everyMs?: number, now?: () => number }} [opts]
 */
export function rateLimited(log, { everyMs = 60_000, now = Date.now } = {}) {
  /** @type {Map<string, { at: number, count: number, last: number }>} lines told at `at`, `count` times since (the last at `last`) */
  const told = new Map();
  /** @param {string} line @param {{ at: number, count: number, last: number }} s */
  const tally = (line, s) =>
    `${line} [${s.count} more time${s.count > 1 ? 's' : ''} since ${new Date(s.at).toISOString()}, the last at ${new Date(s.last).toISOString()}]`;
  return {
    /** @param {string} line */
    log(line) {
      const t = now();
      const s = told.get(line);
      if (s && t - s.at < everyMs) {
        s.count++;
        s.last = t;
        return;
      }
      log(s?.count ? tally(line, s) : line);
      told.set(line, { at: t, count: 0, last: t });
    },
    /** Tells the untold count of each line that stopped coming (of each line, with `all`), and forgets it. */
    flush(all = false) {
      const t = now();
      for (const [line, s] of told) {
        if (!all && t - s.last < everyMs) continue;
        if (s.count > 0) log(tally(line, s));
        told.delete(line);
      }
    },
  };
}
