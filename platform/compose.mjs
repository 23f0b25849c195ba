// @ts-check
// The compose stack (docker-compose.yml) seen from the native platform: both
// serve the same host ports, so `platform:up` refuses to start beside it and
// `status` reads its containers instead of our pid files. Asked through the
// Docker API socket (Docker's, or podman's compatible one); no engine, no stack.
import fs from 'node:fs';
import http from 'node:http';

/** Compose labels every container with this project name (docker-compose.yml `name:`). */
export const COMPOSE_PROJECT = 'kafka-pg-pipeline';

/** Where a Docker API may listen: DOCKER_HOST first. Pure. @param {NodeJS.ProcessEnv} env */
export function dockerSockets(env) {
  const fromEnv = env.DOCKER_HOST?.startsWith('unix://') ? [env.DOCKER_HOST.slice('unix://'.length)] : [];
  return [...fromEnv, '/var/run/docker.sock', '/run/podman/podman.sock'];
}

/**
 * The environment the docker CLI needs to reach an engine: Docker's own as
 * set up, or podman's socket with the classic builder (BuildKit would pull its
 * own image from Docker Hub, which podman machines here cannot reach). Pure.
 * @param {NodeJS.ProcessEnv} env @param {(file: string) => boolean} [exists]
 */
export function dockerClientEnv(env, exists = fs.existsSync) {
  const host = env.DOCKER_HOST ?? (exists('/var/run/docker.sock') ? undefined : 'unix:///run/podman/podman.sock');
  if (!host) return env;
  return { ...env, DOCKER_HOST: host, ...(host.includes('podman') ? { DOCKER_BUILDKIT: '0' } : {}) };
}

/**
 * A container's state as `status` names a service's: ready, starting, down. Pure.
 * @param {{ State?: string, Status?: string }} c
 */
export function containerState(c) {
  if (c.State !== 'running') return c.State === 'exited' && /Exited \(0\)/.test(c.Status ?? '') ? 'done' : 'down';
  if (/\(health: starting\)|\(starting\)/.test(c.Status ?? '')) return 'starting';
  if (/\(unhealthy\)/.test(c.Status ?? '')) return 'unhealthy';
  return 'ready';
}

/** @param {string} socketPath @param {string} route @returns {Promise<any>} */
function getJson(socketPath, route) {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: route, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? JSON.parse(body) : null);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * The stack's containers, running or not, by service; null when no engine
 * answers. Never throws.
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Promise<{ service: string, state: string }[] | null>}
 */
export async function composeContainers(env = process.env) {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${COMPOSE_PROJECT}`] }));
  for (const socket of dockerSockets(env)) {
    if (!fs.existsSync(socket)) continue;
    try {
      const list = await getJson(socket, `/containers/json?all=true&filters=${filters}`);
      if (!Array.isArray(list)) continue;
      return list.map((c) => ({ service: String(c.Labels?.['com.docker.compose.service'] ?? '?'), state: containerState(c) }));
    } catch {
      // Not an engine, or not answering: try the next.
    }
  }
  return null;
}

/** Whether the stack runs: any of its long-lived containers up. Pure. @param {{ state: string }[] | null} containers */
export const stackRunning = (containers) => (containers ?? []).some((c) => c.state !== 'down' && c.state !== 'done');
