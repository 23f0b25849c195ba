// @ts-check
// The local platform's generated passwords (its Kafka users, Connect's REST
// user): one file each under <STATE_DIR>/credentials, readable by the owner
// only, made by `platform:up` the first time they are needed. A password set
// in .env or the environment always wins over these.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.mjs';

/** @typedef {import('./config.mjs').Config} Config */

/** @param {Config} config */
export const credentialsDir = (config) => path.join(config.stateDir, 'credentials');

/** @param {Config} config @param {string} name */
export const credentialFile = (config, name) => path.join(credentialsDir(config), `${name}.password`);

/**
 * The generated password `name`, made now if `create` and missing.
 * @param {Config} config @param {string} name @param {{ create?: boolean, key?: string }} [opts]
 *   key: the setting that would give it instead, for the error message
 */
export function localPassword(config, name, { create = false, key } = {}) {
  const file = credentialFile(config, name);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
    if (!create)
      throw new UserError(
        `no password for ${name}: ${file} is missing; run \`npm run platform:up\` (it creates the local users)${key ? `, or set ${key}` : ''}`,
      );
  }
  fs.mkdirSync(credentialsDir(config), { recursive: true, mode: 0o700 });
  const password = crypto.randomBytes(18).toString('base64url');
  // wx: two `up`s at once never overwrite each other's password.
  try {
    fs.writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    return fs.readFileSync(file, 'utf8').trim();
  }
  return password;
}

/** The keys that set each Kafka identity's password. */
const PASSWORD_KEYS = { admin: 'KAFKA_SASL_PASSWORD', producer: 'KAFKA_PRODUCER_SASL_PASSWORD', connect: 'KAFKA_CONNECT_SASL_PASSWORD' };

/**
 * Who `who` is to Kafka: its user and password.
 * @param {Config} config @param {'admin' | 'producer' | 'connect'} who @param {{ create?: boolean }} [opts]
 * @returns {{ username: string, password: string }}
 */
export function kafkaIdentity(config, who, { create = false } = {}) {
  const { username, password } = config.kafka.users[who];
  if (username === undefined) throw new UserError(`no Kafka user for the ${who}: set KAFKA_SASL_USERNAME`);
  if (password !== undefined) return { username, password };
  return { username, password: localPassword(config, `kafka-${username}`, { create, key: PASSWORD_KEYS[who] }) };
}

/**
 * The basic-auth user of Connect's REST API, or null without authentication.
 * @param {Config} config @param {{ create?: boolean }} [opts]
 * @returns {{ username: string, password: string } | null}
 */
export function connectIdentity(config, { create = false } = {}) {
  const { auth, username, password } = config.connect;
  if (!auth || username === undefined) return null;
  if (password !== undefined) return { username, password };
  if (config.platform !== 'local') throw new UserError('CONNECT_USERNAME is set but CONNECT_PASSWORD is not: set both');
  return { username, password: localPassword(config, `connect-${username}`, { create, key: 'CONNECT_PASSWORD' }) };
}

/** An Authorization header value for basic authentication. @param {{ username: string, password: string }} who */
export const basicHeader = (who) => `Basic ${Buffer.from(`${who.username}:${who.password}`).toString('base64')}`;

/**
 * Basic authentication of the Schema Registry, if configured.
 * @param {Config} config @returns {{ username: string, password: string } | undefined}
 */
export function registryAuth(config) {
  const { username, password } = config.registry.auth;
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}
