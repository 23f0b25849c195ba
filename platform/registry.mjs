// @ts-check
// Apicurio Registry 3.3 (Quarkus, Java 21+), schemas kept in PostgreSQL;
// clients use its Confluent-compatible API under /apis/ccompat/v7.
import path from 'node:path';
import { pgPassword } from '#lib/credentials.mjs';
import { startDetached } from '#lib/procs.mjs';
import { registryJava } from './java.mjs';
import { digest, getJson, jvmFlags, logFile, pidFile, pidFileProcess } from './service.mjs';

/** @typedef {import('#lib/config.mjs').Config} Config */
/** @typedef {import('./service.mjs').Service} Service */

/** @param {Config} config @returns {Service} */
export function registryService(config) {
  const log = logFile(config, 'registry');
  // The JVM's flags, fingerprinted and started with.
  const jvm = jvmFlags(config, 'registry', config.registry.heap);
  return {
    name: 'registry',
    address: config.registry.ccompatUrl,
    ports: [
      { key: 'REGISTRY_PORT', port: config.registry.port },
      { key: 'REGISTRY_MANAGEMENT_PORT', port: config.registry.managementPort },
    ],
    logFile: log,
    hint: 'Apicurio needs Java 21+ (REGISTRY_JAVA_HOME) and reaches PostgreSQL as the registry role; the log names which failed',
    after: ['postgres'],
    ...pidFileProcess(config, 'registry'),
    // The role's password too: a new one (given, or generated after a committed default) restarts it.
    fingerprint: () =>
      digest(
        JSON.stringify(config.registry),
        config.pg.host,
        String(config.pg.port),
        jvm.join(' '),
        String(pgPassword(config, 'registry', { create: true })),
      ),
    async start() {
      const java = registryJava(config);
      const { registry: r, pg: p } = config;
      startDetached({
        cmd: java,
        args: [...jvm, '-jar', 'quarkus-run.jar'],
        cwd: path.join(config.cacheDir, 'apicurio'),
        // Through the environment, not the command line: `ps` shows arguments to everyone.
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          QUARKUS_HTTP_HOST: '127.0.0.1',
          QUARKUS_HTTP_PORT: String(r.port),
          // Health and metrics listen on a port of their own (built in, not optional).
          QUARKUS_MANAGEMENT_HOST: '127.0.0.1',
          QUARKUS_MANAGEMENT_PORT: String(r.managementPort),
          QUARKUS_LOG_CONSOLE_COLOR: 'false',
          APICURIO_STORAGE_KIND: 'sql',
          APICURIO_STORAGE_SQL_KIND: 'postgresql',
          APICURIO_DATASOURCE_URL: `jdbc:postgresql://${p.host}:${p.port}/${r.database}`,
          APICURIO_DATASOURCE_USERNAME: r.user,
          APICURIO_DATASOURCE_PASSWORD: pgPassword(config, 'registry', { create: true }),
        },
        logFile: log,
        pidFile: pidFile(config, 'registry'),
      });
    },
    ready: async () => Array.isArray(await getJson(`${config.registry.ccompatUrl}/subjects`)),
  };
}
