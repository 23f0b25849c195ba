// @ts-check
// connect/*.json: one file per connector, named after it, holding only its
// config. Applied with PUT /connectors/<name>/config, so re-applying is safe.
import fs from 'node:fs';
import path from 'node:path';
import { kafkaAdmin } from './pipeline.mjs';
import { FatalError } from './platform.mjs';
import { delay } from './procs.mjs';

/** @typedef {import('./env.mjs').Config} Config */

/** @param {Config} config @returns {{ name: string, file: string, body: Record<string, string> }[]} */
export function connectorFiles(config) {
  const dir = path.join(config.root, 'connect');
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = path.join(dir, f);
      let body;
      try {
        body = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new FatalError(`${path.relative(config.root, file)} is not valid JSON: ${/** @type {Error} */ (err).message}`);
      }
      return { name: path.basename(f, '.json'), file, body };
    });
}

/**
 * Connect answers with JSON, or with text while it starts.
 * @param {Config} config @param {string} method @param {string} route @param {unknown} [body]
 */
export async function connectApi(config, method, route, body) {
  let res;
  try {
    res = await fetch(`${config.connect.url}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new FatalError(`Kafka Connect is not reachable at ${config.connect.url} (${/** @type {Error} */ (err).message}): run \`npm run platform:up\``);
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  return { status: res.status, json };
}

/**
 * The state of a connector and its tasks. Pure.
 * @param {any} status GET /connectors/<name>/status
 * @returns {{ state: 'running' | 'failed' | 'pending', detail: string, trace?: string }}
 */
export function assessStatus(status) {
  /** @type {{ id: number, state: string, trace?: string }[]} */
  const tasks = Array.isArray(status?.tasks) ? status.tasks : [];
  const failed = [status?.connector, ...tasks].find((t) => t?.state === 'FAILED');
  const detail = `connector ${status?.connector?.state ?? '?'}, tasks ${tasks.map((t) => `${t.id}:${t.state}`).join(' ') || 'none yet'}`;
  if (failed) return { state: 'failed', detail, trace: failed.trace ?? '(no trace)' };
  if (status?.connector?.state === 'RUNNING' && tasks.length > 0 && tasks.every((t) => t.state === 'RUNNING')) return { state: 'running', detail };
  return { state: 'pending', detail };
}

/**
 * The sink's topic, with the configured partitions, before the sink subscribes:
 * a subscription to a missing topic would have the broker create it with one.
 * @param {Config} config
 */
async function ensurePipelineTopic(config) {
  const admin = kafkaAdmin(config);
  try {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: config.pipeline.topic, numPartitions: config.pipeline.partitions, replicationFactor: 1 }], waitForLeaders: true });
  } catch (err) {
    throw new FatalError(`Kafka is not reachable at ${config.kafka.bootstrap} (${/** @type {Error} */ (err).message}): run \`npm run platform:up\``);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * PUTs every connector and waits until it and all its tasks run.
 * @param {Config} config @param {{ timeoutMs?: number, log?: (line: string) => void }} [opts]
 */
export async function applyConnectors(config, { timeoutMs = 90_000, log = console.log } = {}) {
  await ensurePipelineTopic(config);
  const results = [];
  for (const { name, body } of connectorFiles(config)) {
    // Right after start the REST API may answer 409 (rebalancing) or 5xx: retry a while.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, json } = await connectApi(config, 'PUT', `/connectors/${encodeURIComponent(name)}/config`, body);
      if (status === 200 || status === 201) {
        log(`${name}: ${status === 201 ? 'created' : 'config applied'}`);
        break;
      }
      if (status === 400) throw new FatalError(`Connect refused the config of ${name}: ${json?.message ?? status}`);
      if (Date.now() > deadline) throw new FatalError(`Connect kept answering ${status} to PUT ${name}: ${json?.message ?? ''}`);
      await delay(500);
    }
    results.push({ name, ...(await waitRunning(config, name, deadline)) });
  }
  return results;
}

/**
 * A FAILED state right after a PUT may be the old tasks' (a reconfiguration
 * restarts them, and the watchdog restarts failed ones): fail only when it lasts.
 * @param {Config} config @param {string} name @param {number} deadline
 */
async function waitRunning(config, name, deadline, failGraceMs = 15_000) {
  let last = { state: 'pending', detail: '' };
  let failingSince = 0;
  for (;;) {
    const { status, json } = await connectApi(config, 'GET', `/connectors/${encodeURIComponent(name)}/status`);
    if (status === 200) {
      last = assessStatus(json);
      if (last.state === 'running') return last;
      if (last.state === 'failed' && failingSince === 0) {
        // Failed before this apply (say, the role did not exist yet): try again now
        // rather than wait for the watchdog's backoff.
        await connectApi(config, 'POST', `/connectors/${encodeURIComponent(name)}/restart?includeTasks=true&onlyFailed=true`);
      }
      failingSince = last.state === 'failed' ? failingSince || Date.now() : 0;
      if (last.state === 'failed' && Date.now() - failingSince > failGraceMs) {
        console.error(/** @type {any} */ (last).trace);
        throw new FatalError(`${name} failed (${last.detail}); the trace above says why, the worker log is .local/logs/connect.log`);
      }
    }
    if (Date.now() > deadline) throw new FatalError(`${name} was not RUNNING in time (${last.detail})`);
    await delay(250);
  }
}
