// @ts-check
// The original demo's design in its own language (bench/python-baseline):
// Python from PyPI in a virtual environment of its own under .local, made the
// first time (and again when requirements.txt changes).
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pgPassword } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/** @param {Config} config */
function venv(config, log = (/** @type {string} */ _line) => {}) {
  const dir = path.join(config.cacheDir, 'python-baseline');
  const requirements = path.join(config.root, 'bench', 'python-baseline', 'requirements.txt');
  const stamp = path.join(dir, 'requirements.sha256');
  const want = crypto.createHash('sha256').update(fs.readFileSync(requirements)).digest('hex');
  const python = path.join(dir, 'bin', 'python');
  if (fs.existsSync(python) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) return python;
  log(`installing the Python baseline's packages into ${path.relative(config.root, dir)} (once)`);
  const run = (/** @type {string} */ cmd, /** @type {string[]} */ args, /** @type {string} */ fix) => {
    const res = spawnSync(cmd, args, { encoding: 'utf8' });
    if (res.error || res.status !== 0)
      throw new UserError(
        `${cmd} ${args.slice(0, 3).join(' ')} failed (${(res.error?.message ?? res.stderr).trim().split('\n').pop()}): ${fix}`,
      );
  };
  fs.rmSync(dir, { recursive: true, force: true });
  run('python3', ['-m', 'venv', dir], 'install Python 3.11+ with venv (apt-get install -y python3-venv)');
  run(
    path.join(dir, 'bin', 'pip'),
    ['install', '-q', '-r', requirements],
    'check the network, or the versions pinned in bench/python-baseline/requirements.txt',
  );
  fs.writeFileSync(stamp, want);
  return python;
}

/**
 * @param {Config} config @param {number} rows @param {(line: string) => void} [log]
 * @returns {{ rows: number, inserted: number, producerRowsPerSecond: number, endToEndSeconds: number, endToEndRowsPerSecond: number } | { skipped: string }}
 */
export function pythonBaseline(config, rows, log) {
  if (config.kafka.security.protocol !== 'PLAINTEXT') return { skipped: 'runs on a plaintext cluster only (as the original demo did)' };
  const python = venv(config, log);
  const { pg } = config;
  const res = spawnSync(python, [path.join(config.root, 'bench', 'python-baseline', 'demo.py')], {
    encoding: 'utf8',
    timeout: 900_000,
    env: {
      PATH: process.env.PATH,
      BENCH_BROKERS: config.kafka.bootstrap,
      BENCH_ROWS: String(rows),
      BENCH_FILE: config.datasetFile,
      // libpq reads the password from the environment, never from arguments.
      BENCH_PG_DSN: `host=${pg.host} port=${pg.port} dbname=${pg.database} user=${pg.adminUser} sslmode=${pg.sslmode}`,
      PGPASSWORD: pgPassword(config, 'admin'),
    },
  });
  if (res.status !== 0) throw new UserError(`the Python baseline failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
  return JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}');
}
