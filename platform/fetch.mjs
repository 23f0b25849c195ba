// @ts-check
// `platform:fetch`: Kafka, Connect with its plugins, and Apicurio, resolved by
// Maven from platform/pom.xml into the cache. A stamp with every file's size
// lets a later run notice a truncated or deleted file before a JVM trips on it.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';
import { readText } from '#lib/procs.mjs';
import { requireCommand, requireJava } from './java.mjs';
import { ourPids } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

const FETCHED_DIRS = ['kafka', 'connect-plugins', 'apicurio'];

/** The pom decides what the cache must hold. @param {Config} config */
function pomHash(config) {
  return crypto
    .createHash('sha256')
    .update(fs.readFileSync(path.join(config.root, 'platform/pom.xml')))
    .digest('hex');
}

/** @param {Config} config */
const stampFile = (config) => path.join(config.cacheDir, 'platform.stamp.json');

/**
 * Every fetched file with its size: a later `up` compares sizes, so a file
 * truncated or deleted since (an interrupted copy, a full disk) is noticed
 * before a JVM trips over it.
 * @param {Config} config @returns {Record<string, number>}
 */
function manifest(config) {
  /** @type {Record<string, number>} */
  const files = {};
  for (const top of FETCHED_DIRS) {
    const base = path.join(config.cacheDir, top);
    if (!fs.existsSync(base)) continue;
    for (const rel of /** @type {string[]} */ (fs.readdirSync(base, { recursive: true }))) {
      const stat = fs.statSync(path.join(base, rel));
      if (stat.isFile()) files[path.join(top, rel)] = stat.size;
    }
  }
  return files;
}

/**
 * Compares a recorded manifest with what is on disk. Pure.
 * @param {Record<string, number>} recorded @param {(rel: string) => number | undefined} sizeOf
 * @returns {string | null} the first damaged file, or null
 */
export function damagedFile(recorded, sizeOf) {
  for (const [rel, size] of Object.entries(recorded)) {
    const actual = sizeOf(rel);
    if (actual === undefined) return `${rel} is missing`;
    if (actual !== size) return `${rel} has ${actual} bytes, not ${size}`;
  }
  return null;
}

/**
 * Whether the cache holds what the pom asks for, intact.
 * @param {Config} config @returns {{ ok: true } | { ok: false, why: string }}
 */
export function cacheState(config) {
  let stamp;
  try {
    stamp = JSON.parse(readText(stampFile(config)) ?? 'null');
  } catch {
    stamp = null;
  }
  if (!stamp) return { ok: false, why: 'nothing fetched yet' };
  if (stamp.pom !== pomHash(config)) return { ok: false, why: 'platform/pom.xml changed since the last fetch' };
  const damaged = damagedFile(stamp.files, (rel) => {
    try {
      return fs.statSync(path.join(config.cacheDir, rel)).size;
    } catch {
      return undefined;
    }
  });
  return damaged ? { ok: false, why: `the cache is damaged: ${damaged}` } : { ok: true };
}

/**
 * Classifies a failed Maven run from its output, so the user gets one line.
 * @param {string} output
 */
export function mavenFailure(output) {
  if (/Unknown host|Could not transfer artifact|Connection (refused|timed out)|Network is unreachable/i.test(output)) {
    return {
      kind: 'network',
      hint: 'Maven Central is out of reach: check the network or proxy settings (~/.m2/settings.xml), then run again',
    };
  }
  if (
    /Not in GZIP format|Unexpected end of (ZLIB input stream|input stream)|Truncated|error while extracting|invalid (stored block|distance|block type)|zip END header not found|ZipException|Error while expanding/i.test(
      output,
    )
  ) {
    return { kind: 'corrupt', hint: 'an archive in the Maven cache is truncated or corrupt' };
  }
  if (/Could not find artifact|Could not resolve dependencies|Failed to read artifact descriptor/i.test(output)) {
    return { kind: 'missing', hint: 'an artifact pinned in platform/pom.xml is not served: check the versions there' };
  }
  return { kind: 'other', hint: 'see the Maven log' };
}

/** Maven's local repository: MAVEN_REPO_LOCAL, else Maven's default. */
function mavenRepo() {
  return process.env.MAVEN_REPO_LOCAL || path.join(os.homedir(), '.m2', 'repository');
}

/** The archives we unpack: the only cached files whose corruption Maven does not catch. */
function pinnedArchives(/** @type {Config} */ config) {
  const pom = fs.readFileSync(path.join(config.root, 'platform/pom.xml'), 'utf8');
  const prop = (/** @type {string} */ name) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(pom)?.[1] ?? '';
  return [
    `io/debezium/debezium-connector-jdbc/${prop('debezium.version')}`,
    `io/apicurio/apicurio-registry-app/${prop('apicurio.version')}`,
  ].map((dir) => path.join(mavenRepo(), dir));
}

/**
 * Resolves the JVM services into the cache. A second run with an unchanged
 * pom does nothing and starts no Maven.
 * @param {Config} config @param {{ refresh?: boolean, log?: (line: string) => void }} [opts]
 */
export async function fetchPlatform(config, { refresh = false, log = console.log } = {}) {
  const state = cacheState(config);
  if (!refresh && state.ok) return { skipped: true, seconds: 0 };
  if (!state.ok && state.why !== 'nothing fetched yet') log(`${state.why}: fetching again`);
  if (ourPids(config).length > 0) {
    throw new UserError(
      `the platform cache needs fetching again (${state.ok ? 'asked to refresh' : state.why}), but services of ours are running from it: run \`npm run platform:down\` first`,
    );
  }
  requireCommand('mvn', ['-v'], 'Maven is not installed: run `apt-get install -y maven` (or install Maven 3.8+), then run again');
  requireJava(17);
  const started = Date.now();
  fs.mkdirSync(config.logDir, { recursive: true });
  const logFile = path.join(config.logDir, 'fetch.log');
  // A half-finished earlier fetch may have left truncated copies: redo all
  // copies from Maven's own cache (cheap) rather than trust any of them.
  fs.rmSync(stampFile(config), { force: true });
  fs.rmSync(path.join(config.cacheDir, '.markers'), { recursive: true, force: true });
  for (const dir of FETCHED_DIRS) {
    fs.rmSync(path.join(config.cacheDir, dir), { recursive: true, force: true });
  }
  if (refresh) for (const dir of pinnedArchives(config)) fs.rmSync(dir, { recursive: true, force: true });

  log(
    `fetching Kafka, Connect, the JDBC sink and Apicurio with Maven (first time: about 300 MB); log: ${path.relative(config.root, logFile)}`,
  );
  let result = await runMaven(config, logFile, log);
  if (!result.ok && mavenFailure(result.output).kind === 'corrupt') {
    log('a cached archive is corrupt: deleting the pinned archives from the Maven cache and fetching them again');
    for (const dir of pinnedArchives(config)) fs.rmSync(dir, { recursive: true, force: true });
    result = await runMaven(config, logFile, log);
  }
  if (!result.ok) {
    const { hint } = mavenFailure(result.output);
    const lastError =
      result.output
        .split('\n')
        .filter((l) => l.includes('[ERROR]'))
        .slice(0, 1)[0] ?? '';
    throw new UserError(`fetch failed: ${hint} (${lastError.replace(/\s*\[ERROR\]\s*/, '').slice(0, 300)}); full log: ${logFile}`);
  }
  fs.writeFileSync(stampFile(config), JSON.stringify({ pom: pomHash(config), files: manifest(config) }));
  return { skipped: false, seconds: (Date.now() - started) / 1000 };
}

/** @param {Config} config @param {string} logFile @param {(line: string) => void} log */
function runMaven(config, logFile, log) {
  return /** @type {Promise<{ ok: boolean, output: string }>} */ (
    new Promise((resolve) => {
      const args = [
        '-B',
        '-C',
        '-f',
        path.join(config.root, 'platform/pom.xml'),
        'package',
        `-Dcache.dir=${config.cacheDir}`,
        `-Dmaven.repo.local=${mavenRepo()}`,
      ];
      const child = spawn('mvn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out = fs.createWriteStream(logFile);
      let output = '';
      let downloads = 0;
      const started = Date.now();
      const onData = (/** @type {Buffer} */ chunk) => {
        const text = chunk.toString();
        output += text;
        out.write(text);
        downloads += (text.match(/Downloaded from/g) ?? []).length;
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      const timer = setInterval(() => {
        log(`  ...${Math.round((Date.now() - started) / 1000)} s, ${downloads} files downloaded`);
      }, 15_000);
      child.on('close', (code) => {
        clearInterval(timer);
        out.end();
        resolve({ ok: code === 0, output });
      });
    })
  );
}
