// @ts-check
// The local cluster's TLS: a CA of its own and one certificate the Kafka
// nodes share (CN=kafka-node, for 127.0.0.1 and localhost), made once with
// openssl into <STATE_DIR>/tls and kept across `down --purge`, so clients
// that trust ca.pem keep trusting it. Keys are files readable by the owner
// only and never pass through a command line.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '#lib/errors.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */

/** @param {Config} config */
export const tlsDir = (config) => path.join(config.stateDir, 'tls');

/** The principal Kafka gives a node that shows its certificate (the controller listener's mutual TLS). */
export const NODE_PRINCIPAL = 'User:CN=kafka-node';

/**
 * The CA, and the nodes' key and certificate in one PEM file as Kafka's PEM
 * keystore reads it. Idempotent.
 * @param {Config} config @returns {{ ca: string, nodePem: string }}
 */
export function ensureTls(config) {
  const dir = tlsDir(config);
  const file = (/** @type {string} */ name) => path.join(dir, name);
  const files = { ca: file('ca.pem'), nodePem: file('node.pem') };
  if (fs.existsSync(files.ca) && fs.existsSync(files.nodePem)) return files;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const openssl = (/** @type {string[]} */ args) => {
    const res = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (res.error)
      throw new UserError(`openssl is needed to make the local cluster's certificates (${res.error.message}): apt-get install openssl`);
    if (res.status !== 0) throw new UserError(`openssl ${args[0]} failed making ${dir}: ${(res.stderr || '').trim().split('\n').pop()}`);
  };
  const days = '3650';
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc'];
  openssl(['req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', days, '-subj', '/CN=kafka-pg-pipeline local CA']);
  openssl(['req', ...ecKey, '-keyout', 'node.key', '-out', 'node.csr', '-subj', '/CN=kafka-node']);
  fs.writeFileSync(
    file('node.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n',
  );
  openssl([
    'x509',
    '-req',
    '-in',
    'node.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'node.crt',
    '-days',
    days,
    '-extfile',
    'node.ext',
  ]);
  // Kafka's PEM keystore: the unencrypted PKCS#8 key, then the chain.
  fs.writeFileSync(
    `${files.nodePem}.tmp`,
    fs.readFileSync(file('node.key'), 'utf8') + fs.readFileSync(file('node.crt'), 'utf8') + fs.readFileSync(files.ca, 'utf8'),
    { mode: 0o600 },
  );
  fs.renameSync(`${files.nodePem}.tmp`, files.nodePem);
  for (const name of ['ca.key', 'node.key']) fs.chmodSync(file(name), 0o600);
  for (const name of ['node.csr', 'node.ext', 'ca.srl']) fs.rmSync(file(name), { force: true });
  return files;
}
