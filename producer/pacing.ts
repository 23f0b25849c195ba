// Real-time replay: how long to wait before sending the next rows. Pure.

export type Pace =
  | { mode: 'max' }
  /** A fixed number of rows per second. */
  | { mode: 'rate'; rowsPerSecond: number }
  /** Data time runs `factor` times faster than wall time (1 = as recorded). */
  | { mode: 'speed'; factor: number };

/**
 * Milliseconds to wait so that the row about to be sent is on time.
 * @param sent rows sent so far in this run
 * @param elapsedMs wall time since the run started
 * @param rowTs, firstTs data timestamps (ms) of the next row and of the run's first row
 */
export function waitMs(pace: Pace, sent: number, elapsedMs: number, rowTs: number, firstTs: number): number {
  if (pace.mode === 'rate') return Math.max(0, (sent / pace.rowsPerSecond) * 1000 - elapsedMs);
  if (pace.mode === 'speed') return Math.max(0, (rowTs - firstTs) / pace.factor - elapsedMs);
  return 0;
}

/**
 * Rows per send. At full speed, big chunks; when paced, about twenty sends a
 * second so that rows leave close to their due time.
 * @param medianGapMs typical data-time gap between rows (for --speed)
 */
export function chunkRowsFor(pace: Pace, maxRows: number, medianGapMs = 60_000): number {
  const perSecond = pace.mode === 'rate' ? pace.rowsPerSecond : pace.mode === 'speed' ? (pace.factor * 1000) / medianGapMs : Infinity;
  return Math.max(1, Math.min(maxRows, Math.floor(perSecond / 20)));
}
