#!/usr/bin/env node
// @ts-check
// The `credentials` service of docker-compose.yml: the stack's passwords,
// made once and handed to each container that needs them and to no other.
// The master copies are the host's own <STATE_DIR>/credentials/<name>.password,
// the files the native platform makes (lib/credentials.mjs): natively and in
// compose one password per name, so psql, `npm run status` and curl on the
// host reach either stack alike. Each consumer has a volume of its own that
// holds only its share, owned by the user its image runs as, mounted read-only.
// Beside them on the host, pgpass and connect.curlrc as the native platform
// writes them (lib/credentials.mjs writeClientRecipes): psql and curl recipes
// work against the containers even where the native platform never ran.
// It runs before anything else, as root (only to hand files to other users),
// and needs nothing of lib/config.mjs: the few names come from compose.
// Idempotent: what exists is kept, a password only ever made once.
//   node platform/container/credentials.mjs
// Mounts (docker-compose.yml): /project the project folder (read-only: its
// owner becomes the owner of what is written on the host), /state the host's
// STATE_DIR, /secrets/<consumer> each consumer's volume.
import fs from 'node:fs';
import path from 'node:path';
import { newPassword, pgpassField } from '#lib/credentials.mjs';

/** Every password of the compose stack. The Kafka users' are not among them: compose runs PLAINTEXT. */
export const SECRETS = /** @type {const} */ (['pg-admin', 'pg-registry', 'pg-sink', 'pg-etl', 'pg-reader', 'connect-admin']);

/** @typedef {typeof SECRETS[number]} Secret */
/** @typedef {{ uid: number, secrets: readonly Secret[], pgpass?: boolean }} Consumer */

/**
 * Who gets which password: each consumer is a volume, mounted by its
 * containers where their code looks (docker-compose.yml), owned by the uid
 * its image runs as (platform/container/Dockerfile). The admin password
 * reaches PostgreSQL (initdb, and psql in the container through a pgpass
 * file) and the migrations, nothing else; the producer gets none.
 * @type {Record<string, Consumer>}
 */
export const CONSUMERS = {
  postgres: { uid: 100, secrets: ['pg-admin', 'pg-registry'], pgpass: true },
  registry: { uid: 1002, secrets: ['pg-registry'] },
  // The sink's password for ${env:PG_SINK_PASSWORD}; the REST user for its users file.
  connect: { uid: 1001, secrets: ['pg-sink', 'connect-admin'] },
  // Migrations set the component roles' passwords, then connect/*.json goes in over REST.
  init: { uid: 1003, secrets: ['pg-admin', 'pg-sink', 'pg-etl', 'pg-reader', 'connect-admin'] },
  // Restarts tasks over REST; finds a refused record as the sink role.
  watchdog: { uid: 1003, secrets: ['pg-sink', 'connect-admin'] },
  dashboard: { uid: 1003, secrets: ['pg-reader', 'connect-admin'] },
};

/**
 * A password file's text, refused when it is not one line: it goes into a
 * pgpass file, a properties file and an HTTP header. Pure.
 * @param {string} file @param {string} text
 */
export function readPassword(file, text) {
  const password = text.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (password === '' || /[\u0000-\u001f\u007f]/.test(password))
    throw new Error(`${file} must hold one password on one line: fix it, or delete it to have one generated`);
  return password;
}

/** A pgpass line, escaped as libpq reads it. Pure. @param {(string | number)[]} fields host, port, database, user, password */
export const pgpassLine = (fields) => `${fields.map(pgpassField).join(':')}\n`;

/** The component roles, named by migrations/, with their passwords' names. */
const ROLES = /** @type {const} */ ([
  ['pipeline_sink', 'pg-sink'],
  ['pipeline_etl', 'pg-etl'],
  ['pipeline_reader', 'pg-reader'],
]);

/**
 * The host's recipes, as writeClientRecipes (lib/credentials.mjs) writes them
 * natively: a pgpass file for the admin and every role on the published port,
 * and a curl config for Connect's REST user. Pure.
 * @param {Record<Secret, string>} passwords @param {{ pgAdminUser: string, pgPort: string }} names
 */
export function hostRecipes(passwords, { pgAdminUser, pgPort }) {
  const who = [[pgAdminUser, 'pg-admin'], ...ROLES].map(([user, name]) =>
    pgpassLine(['127.0.0.1', pgPort, '*', user, passwords[/** @type {Secret} */ (name)]]),
  );
  const quoted = (/** @type {string} */ s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return { pgpass: who.join(''), 'connect.curlrc': `user = ${quoted(`admin:${passwords['connect-admin']}`)}\n` };
}

/**
 * What one consumer's volume holds: file name to text. Pure.
 * @param {Consumer} consumer @param {Record<Secret, string>} passwords @param {{ pgAdminUser: string }} names
 * @returns {Record<string, string>}
 */
export function volumeFiles(consumer, passwords, { pgAdminUser }) {
  /** @type {Record<string, string>} */
  const files = Object.fromEntries(consumer.secrets.map((name) => [`${name}.password`, `${passwords[name]}\n`]));
  // psql in the postgres container, over its socket: any host, port and database.
  if (consumer.pgpass) files.pgpass = pgpassLine(['*', '*', '*', pgAdminUser, passwords['pg-admin']]);
  return files;
}

/** @typedef {{ uid: number, gid: number }} Owner */

/**
 * Writes `text` unless the file holds it already, with its owner and mode:
 * whole or not at all (a container may be reading it).
 * @param {string} file @param {string} text @param {Owner} owner @param {number} mode
 */
function writeIfChanged(file, text, owner, mode) {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st && st.uid === owner.uid && (st.mode & 0o777) === mode && fs.readFileSync(file, 'utf8') === text) return;
  const tmp = `${file}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, text, { mode, flag: 'wx' });
  fs.chownSync(tmp, owner.uid, owner.gid);
  fs.renameSync(tmp, file);
}

/**
 * The master copies in the host's STATE_DIR: read, or made with the owner of
 * the project folder (the engine runs this as root; the host's user must read
 * them). A STATE_DIR the engine has just created for the mount is root's and
 * empty: it is handed to that owner too, private, as the native platform makes it.
 * @param {string} stateDir @param {Owner} owner @param {(line: string) => void} log
 * @returns {Record<Secret, string>}
 */
function masterPasswords(stateDir, owner, log) {
  if (fs.readdirSync(stateDir).length === 0) {
    fs.chownSync(stateDir, owner.uid, owner.gid);
    fs.chmodSync(stateDir, 0o700);
  }
  const dir = path.join(stateDir, 'credentials');
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, owner.uid, owner.gid);
  }
  fs.chmodSync(dir, 0o700);
  /** @type {Partial<Record<Secret, string>>} */
  const passwords = {};
  const made = [];
  for (const name of SECRETS) {
    const file = path.join(dir, `${name}.password`);
    try {
      passwords[name] = readPassword(file, fs.readFileSync(file, 'utf8'));
      continue;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
    }
    const password = newPassword();
    // wx: a native `platform:up` making the same file at this moment wins, and both use its password.
    try {
      fs.writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
      fs.chownSync(file, owner.uid, owner.gid);
      passwords[name] = password;
      made.push(name);
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
      passwords[name] = readPassword(file, fs.readFileSync(file, 'utf8'));
    }
  }
  if (made.length) log(`generated ${made.join(', ')} into the host's STATE_DIR/credentials`);
  return /** @type {Record<Secret, string>} */ (passwords);
}

/**
 * One consumer's volume made to hold exactly its share: a file it should not
 * have (a secret moved to another consumer) is removed, never left behind.
 * @param {string} dir @param {Consumer} consumer @param {Record<string, string>} files
 */
function fillVolume(dir, consumer, files) {
  // The group stays the writer's (root's): the modes give groups nothing anyway.
  const owner = { uid: consumer.uid, gid: -1 };
  fs.chownSync(dir, owner.uid, owner.gid);
  fs.chmodSync(dir, 0o700);
  for (const entry of fs.readdirSync(dir)) if (!(entry in files)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  for (const [name, text] of Object.entries(files)) writeIfChanged(path.join(dir, name), text, owner, 0o400);
}

/**
 * @param {{ project: string, state: string, secrets: string, pgAdminUser: string, pgPort: string,
 *   consumers?: Record<string, Consumer>, log?: (line: string) => void }} where
 *   pgPort: the host's published PostgreSQL port (PG_PORT)
 */
export function generate({ project, state, secrets, pgAdminUser, pgPort, consumers = CONSUMERS, log = () => {} }) {
  const { uid, gid } = fs.statSync(project);
  const passwords = masterPasswords(state, { uid, gid }, log);
  for (const [name, text] of Object.entries(hostRecipes(passwords, { pgAdminUser, pgPort })))
    writeIfChanged(path.join(state, 'credentials', name), text, { uid, gid }, 0o600);
  for (const [name, consumer] of Object.entries(consumers)) {
    const dir = path.join(secrets, name);
    if (!fs.existsSync(dir))
      throw new Error(`${dir} is not mounted: docker-compose.yml gives the credentials service a volume per consumer`);
    fillVolume(dir, consumer, volumeFiles(consumer, passwords, { pgAdminUser }));
  }
  const shares = Object.entries(consumers).map(([name, c]) => `${name} (${c.secrets.join(', ')})`);
  log(`shares: ${shares.join('; ')}`);
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const { PG_ADMIN_USER: pgAdminUser, HOST_PG_PORT: pgPort } = process.env;
  if (!pgAdminUser || !pgPort) {
    console.error('credentials: PG_ADMIN_USER and HOST_PG_PORT must be set (docker-compose.yml passes them from .env)');
    process.exit(2);
  }
  try {
    const log = (/** @type {string} */ line) => console.log(`credentials: ${line}`);
    generate({ project: '/project', state: '/state', secrets: '/secrets', pgAdminUser, pgPort, log });
  } catch (err) {
    console.error(`credentials: ${/** @type {Error} */ (err).message}`);
    process.exit(1);
  }
}
