// Real-time replay: how long to wait before sending the next rows. Pure: no
// clock here, the caller gives the time (Pacer only remembers the run so far);
// sleep() is the one timer, the wait itself.

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

/**
 * The typical data-time gap between rows, in ms: the median positive gap of
 * the first 101 timestamps (60 s, a row a minute, when there is none).
 */
export function medianGapMs(timestamps: ArrayLike<unknown>): number {
  const n = Math.min(timestamps.length, 101);
  const gaps: number[] = [];
  for (let i = 1; i < n; i++) {
    const gap = Number(timestamps[i]) - Number(timestamps[i - 1]);
    if (Number.isFinite(gap) && gap > 0) gaps.push(gap);
  }
  gaps.sort((a, b) => a - b);
  return gaps.length > 0 ? gaps[Math.floor(gaps.length / 2)] : 60_000;
}

/** A run's pacing, chunk after chunk: what it has sent and when its data starts. */
export class Pacer {
  private readonly pace: Pace;
  private sent = 0;
  private firstTs: number | null = null;

  constructor(pace: Pace) {
    this.pace = pace;
  }

  /**
   * Milliseconds to hold a chunk back (see waitMs), given the wall time since
   * the run started; then counts its rows as sent. A chunk with no row to
   * send is never held back and leaves the pace as it was.
   * @param chunk rows to send, and the data timestamps of its first and last one
   */
  waitFor(chunk: { sent: number; firstTs: number; lastTs: number }, elapsedMs: number): number {
    if (chunk.sent === 0) return 0;
    this.firstTs ??= chunk.firstTs;
    const wait = waitMs(this.pace, this.sent, elapsedMs, chunk.lastTs, this.firstTs);
    this.sent += chunk.sent;
    return wait;
  }
}

/**
 * Waits `ms`, or less if `signal` aborts (at once if it has). Leaves no
 * listener on the signal behind: a run waits before each paced chunk.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
