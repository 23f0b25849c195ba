// @ts-check
// PLATFORM=external: the services are someone else's (a managed Kafka, a
// Connect cluster, a registry, PostgreSQL). The platform commands only check
// that each endpoint answers, with our credentials, and never start or stop
// anything.
import { basicHeader, connectIdentity, registryAuth } from '#lib/credentials.mjs';
import { UserError } from '#lib/errors.mjs';
import { kafkaConnectFailure, withKafkaAdmin } from '#lib/kafka.mjs';
import { withPg } from '#lib/pg.mjs';
import { AVRO_CONVERTER_CLASS, JDBC_SINK_CLASS } from './connect.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./lifecycle.mjs').Row} Row */

/**
 * Each endpoint, asked once: 'ready' or why not.
 * @param {Config} config @returns {Promise<Row[]>}
 */
export async function checkEndpoints(config) {
  const t0 = Date.now();
  /** @param {string} name @param {string} address @param {() => Promise<string>} probe @returns {Promise<Row>} */
  const row = async (name, address, probe) => {
    let state;
    try {
      state = await probe();
    } catch (err) {
      state = `down: ${err instanceof UserError ? err.message : /** @type {Error} */ (err).message}`;
    }
    return { name, address, state, seconds: (Date.now() - t0) / 1000, log: '(external)' };
  };
  return Promise.all([
    row('postgres', `${config.pg.host}:${config.pg.port}/${config.pg.database}`, async () => {
      await withPg(config, 'admin', (c) => c.query('SELECT 1'));
      return 'ready';
    }),
    row('kafka', config.kafka.bootstrap, async () => {
      const cluster = await withKafkaAdmin(config, (admin) => admin.describeCluster()).catch((err) => {
        throw err instanceof UserError ? err : new UserError(kafkaConnectFailure(config, err));
      });
      return cluster.brokers.length > 0 ? 'ready' : 'down: no broker in the cluster metadata';
    }),
    row('registry', config.registry.ccompatUrl, async () => {
      const auth = registryAuth(config);
      const res = await httpGet(`${config.registry.ccompatUrl}/subjects`, auth ? { authorization: basicHeader(auth) } : {});
      if (res.status === 401 || res.status === 403)
        return `down: HTTP ${res.status}: ${auth ? 'check' : 'set'} SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD`;
      return res.status === 200 && Array.isArray(res.json)
        ? 'ready'
        : `down: HTTP ${res.status} from ${config.registry.ccompatUrl}/subjects`;
    }),
    row('connect', config.connect.url, async () => {
      const who = connectIdentity(config);
      const res = await httpGet(
        `${config.connect.url}/connector-plugins?connectorsOnly=false`,
        who ? { authorization: basicHeader(who) } : {},
      );
      if (res.status === 401 || res.status === 403)
        return `down: HTTP ${res.status}: ${who ? 'check' : 'set'} CONNECT_USERNAME and CONNECT_PASSWORD`;
      if (res.status !== 200 || !Array.isArray(res.json)) return `down: HTTP ${res.status} from ${config.connect.url}`;
      const classes = res.json.map((p) => String(p.class));
      const missing = [JDBC_SINK_CLASS, AVRO_CONVERTER_CLASS].filter((c) => !classes.includes(c));
      return missing.length === 0
        ? 'ready'
        : `down: the workers lack ${missing.join(' and ')}: install them (README: "Run it on your cluster")`;
    }),
  ]);
}

/** @param {string} url @param {Record<string, string>} headers */
async function httpGet(url, headers) {
  let res;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new UserError(`not reachable (${/** @type {Error} */ (err).cause ?? /** @type {Error} */ (err).message})`);
  }
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}
