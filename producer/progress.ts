// Progress on a terminal (a bar with rows/s and ETA, by cli-progress), or
// plain periodic lines when output goes to a file or a CI log.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, rejected: number): void;
  stop(): void;
}

export function formatRate(rowsPerSecond: number) {
  return `${Math.round(rowsPerSecond).toLocaleString('en')} rows/s`;
}

export function createProgress(
  total: number,
  { tty = Boolean(process.stderr.isTTY), intervalMs = 5000, log = (line: string) => console.error(line) } = {},
): Progress {
  const started = performance.now();
  const rate = (done: number) => done / Math.max((performance.now() - started) / 1000, 1e-3);
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: ' {bar} {percentage}% | {value}/{total} rows | {speed} | {rejected} rejected | ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { speed: formatRate(0), rejected: 0 });
    return {
      update: (done, rejected) => bar.update(done, { speed: formatRate(rate(done)), rejected }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, rejected) {
      const now = performance.now();
      if (now - last < intervalMs) return;
      last = now;
      const r = rate(done);
      const eta = r > 0 ? Math.ceil((total - done) / r) : NaN;
      log(
        `produced ${done.toLocaleString('en')}/${total.toLocaleString('en')} rows (${Math.floor((done / Math.max(total, 1)) * 100)}%), ${formatRate(r)}, ${rejected} rejected, ETA ${Number.isFinite(eta) ? `${eta} s` : '?'}`,
      );
    },
    stop() {},
  };
}
