// @ts-check
// connect/*.json: one file per connector, named after it, holding only its
// config. Applied with PUT /connectors/<name>/config, so re-applying is safe.
import fs from 'node:fs';
import path from 'node:path';
import { assessStatus, connectApi, connectorStatus, restartFailed } from '#lib/connect.mjs';
import { UserError } from '#lib/errors.mjs';
import { ensureTopic, topicReplication, withKafkaAdmin } from '#lib/kafka.mjs';
import { delay } from '#lib/procs.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/** @param {Config} config @returns {{ name: string, file: string, body: Record<string, string> }[]} */
export function connectorFiles(config) {
  const dir = path.join(config.root, 'connect');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = path.join(dir, f);
      let body;
      try {
        body = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new UserError(`${path.relative(config.root, file)} is not valid JSON: ${/** @type {Error} */ (err).message}`);
      }
      return { name: path.basename(f, '.json'), file, body };
    });
}

/**
 * The sink's topic, with the configured partitions, before the sink subscribes:
 * a subscription to a missing topic would have the broker create it with one.
 * @param {Config} config
 */
async function ensurePipelineTopic(config) {
  await withKafkaAdmin(config, (admin) => ensureTopic(admin, config.pipeline.topic, config.pipeline.partitions, topicReplication(config)));
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
      if (status === 400) throw new UserError(`Connect refused the config of ${name}: ${json?.message ?? status}`);
      if (Date.now() > deadline) throw new UserError(`Connect kept answering ${status} to PUT ${name}: ${json?.message ?? ''}`);
      await delay(500);
    }
    // A config PUT leaves a stopped or paused connector so (the watchdog stops
    // the sink while it moves a refused record): applying means running.
    const { json } = await connectorStatus(config, name);
    const state = json?.connector?.state;
    if (state === 'STOPPED' || state === 'PAUSED') {
      await connectApi(config, 'PUT', `/connectors/${encodeURIComponent(name)}/resume`);
      log(`${name}: resumed (it was ${state})`);
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
    const { status, json } = await connectorStatus(config, name);
    if (status === 200) {
      last = assessStatus(json);
      if (last.state === 'running') return last;
      if (last.state === 'failed' && failingSince === 0) {
        // Failed before this apply (say, the role did not exist yet): try again now
        // rather than wait for the watchdog's backoff.
        await restartFailed(config, name);
      }
      failingSince = last.state === 'failed' ? failingSince || Date.now() : 0;
      if (last.state === 'failed' && Date.now() - failingSince > failGraceMs) {
        console.error(/** @type {any} */ (last).trace);
        throw new UserError(`${name} failed (${last.detail}); the trace above says why, the worker log is .local/logs/connect.log`);
      }
    }
    if (Date.now() > deadline) throw new UserError(`${name} was not RUNNING in time (${last.detail})`);
    await delay(250);
  }
}
