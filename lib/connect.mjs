// @ts-check
// The Kafka Connect REST API: one client, and what a connector's status means.
import { basicHeader, connectIdentity } from './credentials.mjs';
import { UserError } from './errors.mjs';

/** @typedef {import('./config.mjs').Config} Config */
/** @typedef {{ id?: number, state: string, trace?: string }} Part a connector or one of its tasks */

/**
 * Connect answers with JSON, or with text while it starts.
 * @param {Config} config @param {string} method @param {string} route @param {unknown} [body]
 * @returns {Promise<{ status: number, json: any }>}
 */
export async function connectApi(config, method, route, body) {
  let res;
  const who = connectIdentity(config);
  /** @type {Record<string, string>} */
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  if (who) headers.authorization = basicHeader(who);
  try {
    res = await fetch(`${config.connect.url}${route}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new UserError(
      `Kafka Connect is not reachable at ${config.connect.url} (${/** @type {Error} */ (err).message}): run \`npm run platform:up\``,
      { cause: err },
    );
  }
  if (res.status === 401 || res.status === 403)
    throw new UserError(
      `Kafka Connect at ${config.connect.url} refused ${who ? `user ${who.username}` : 'a request without credentials'} (HTTP ${res.status}): ${who ? 'check CONNECT_USERNAME and CONNECT_PASSWORD' : 'set CONNECT_USERNAME and CONNECT_PASSWORD'}`,
    );
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
 * The connector and tasks in FAILED state. Pure.
 * @param {any} status GET /connectors/<name>/status @returns {Part[]}
 */
export function failedParts(status) {
  const tasks = Array.isArray(status?.tasks) ? status.tasks : [];
  return [status?.connector, ...tasks].filter((part) => part?.state === 'FAILED');
}

/**
 * The state of a connector and its tasks. Pure.
 * @param {any} status GET /connectors/<name>/status
 * @returns {{ state: 'running' | 'failed' | 'pending', detail: string, trace?: string }}
 */
export function assessStatus(status) {
  /** @type {Part[]} */
  const tasks = Array.isArray(status?.tasks) ? status.tasks : [];
  const failed = failedParts(status)[0];
  const detail = `connector ${status?.connector?.state ?? '?'}, tasks ${tasks.map((t) => `${t.id}:${t.state}`).join(' ') || 'none yet'}`;
  if (failed) return { state: 'failed', detail, trace: failed.trace ?? '(no trace)' };
  if (status?.connector?.state === 'RUNNING' && tasks.length > 0 && tasks.every((t) => t.state === 'RUNNING'))
    return { state: 'running', detail };
  return { state: 'pending', detail };
}

/** @param {Config} config @param {string} name */
export const connectorStatus = (config, name) => connectApi(config, 'GET', `/connectors/${encodeURIComponent(name)}/status`);

/**
 * Restarts a connector's failed parts (Connect never does it by itself).
 * @param {Config} config @param {string} name
 */
export const restartFailed = (config, name) =>
  connectApi(config, 'POST', `/connectors/${encodeURIComponent(name)}/restart?includeTasks=true&onlyFailed=true`);
