#!/usr/bin/env node
// @ts-check
// The broker's and the Connect worker's properties for docker-compose.yml,
// made by the functions that make them for the native platform (platform/
// kafka.mjs, platform/connect.mjs), with only what a container changes put
// over them: listeners on the compose network, paths inside the image.
// Run at image build time (platform/container/Dockerfile):
//   node platform/container/render.mjs kafka|connect
// Values a user may change at `docker compose up` without a rebuild stay
// placeholders (${CONNECT_GROUP_ID}) that the entrypoint fills in.
import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { buildConfig, ROOT } from '#lib/config.mjs';
import { connectWorkerProperties } from '../connect.mjs';
import { kafkaServerProperties } from '../kafka.mjs';
import { toProperties } from '../service.mjs';

/** Where the images keep things (platform/container/Dockerfile). */
export const IMAGE = {
  kafkaData: '/var/lib/kafka/data',
  plugins: '/opt/connect-plugins',
  secrets: '/opt/kafka/secrets',
};
/** The broker's listener for the compose network; the host's is KAFKA_PORT. */
export const INTERNAL_KAFKA = 'kafka:29092';

/** @param {string} text @returns {Record<string, string>} */
const parse = (text) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

/** A config as the containers see it: defaults of .env, services by name. @param {Record<string, string | undefined>} defaults */
function containerConfig(defaults) {
  return buildConfig(
    defaults,
    {
      KAFKA_BOOTSTRAP_SERVERS: INTERNAL_KAFKA,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a placeholder the entrypoint fills in
      CONNECT_GROUP_ID: '${CONNECT_GROUP_ID}',
      CACHE_DIR: '/tmp',
      STATE_DIR: '/tmp',
    },
    ROOT,
  );
}

/**
 * The broker: two listeners, one named for the compose network and one for
 * the host (advertised as 127.0.0.1:KAFKA_PORT, set at start since compose
 * publishes that port); the controller inside the container. Pure.
 * @param {Record<string, string | undefined>} defaults
 */
export function kafkaContainerProperties(defaults) {
  const props = parse(kafkaServerProperties(containerConfig(defaults)));
  return toProperties({
    ...props,
    'controller.quorum.voters': '1@127.0.0.1:9093',
    listeners: 'INTERNAL://0.0.0.0:29092,EXTERNAL://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093',
    'advertised.listeners': `INTERNAL://${INTERNAL_KAFKA},EXTERNAL://127.0.0.1:\${KAFKA_PORT}`,
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT',
    'inter.broker.listener.name': 'INTERNAL',
    'log.dirs': IMAGE.kafkaData,
  });
}

/** The worker: REST on the compose network, plugins and secrets where the image keeps them. Pure. @param {Record<string, string | undefined>} defaults */
export function connectContainerProperties(defaults) {
  const props = parse(connectWorkerProperties(containerConfig(defaults)));
  return toProperties({
    ...props,
    listeners: 'http://0.0.0.0:8083',
    'rest.advertised.host.name': 'connect',
    'rest.advertised.port': '8083',
    'plugin.path': IMAGE.plugins,
    'config.providers.file.param.allowed.paths': IMAGE.secrets,
  });
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const defaults = parseEnv(fs.readFileSync(path.join(ROOT, '.env'), 'utf8'));
  const what = process.argv[2];
  if (what === 'kafka') process.stdout.write(kafkaContainerProperties(defaults));
  else if (what === 'connect') process.stdout.write(connectContainerProperties(defaults));
  else {
    console.error('usage: node platform/container/render.mjs kafka|connect');
    process.exit(2);
  }
}
