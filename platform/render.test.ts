import { describe, expect, it } from 'vitest';
import { table } from '#lib/cli.mjs';
import { buildConfig } from '#lib/config.mjs';
import { connectWorkerProperties } from './connect.mjs';
import { javaMajor, pickJdk } from './java.mjs';
import { kafkaClusterId, kafkaServerProperties } from './kafka.mjs';
import { postgresConf } from './postgres.mjs';
import { COLLECTORS, jvmFlags, toProperties } from './service.mjs';

const defaults = {
  CACHE_DIR: '.local',
  KAFKA_HOST: '127.0.0.1',
  KAFKA_PORT: '9092',
  KAFKA_CONTROLLER_PORT: '9093',
  KAFKA_HEAP: '-Xmx512m',
  REGISTRY_PORT: '8081',
  REGISTRY_MANAGEMENT_PORT: '9081',
  REGISTRY_HEAP: '-Xmx384m',
  REGISTRY_DB: 'registry',
  REGISTRY_DB_USER: 'registry',
  REGISTRY_DB_PASSWORD: 'pw',
  CONNECT_PORT: '8083',
  DASHBOARD_PORT: '8090',
  CONNECT_HEAP: '-Xmx768m',
  CONNECT_GROUP_ID: 'g',
  PG_HOST: '127.0.0.1',
  PG_PORT: '5433',
  PG_DATABASE: 'kafka_data',
  PG_ADMIN_USER: 'admin',
  PG_ADMIN_PASSWORD: 'admin',
  PG_BIN_DIR: '/usr/lib/postgresql/15/bin',
  READY_TIMEOUT_S: '120',
  TOPIC: 'synthetic_data',
  REJECTED_TOPIC: 'synthetic_data.rejected',
  DLQ_TOPIC: 'synthetic_data.dlq',
  TOPIC_PARTITIONS: '4',
  DATASET_FILE: 'data/x.parquet',
  PRODUCER_COMPRESSION: 'gzip',
  PRODUCER_CHUNK_ROWS: '4096',
  PRODUCER_BATCH_MESSAGES: '1000',
  PG_SINK_PASSWORD: 's',
  PG_ETL_PASSWORD: 'e',
  PG_READER_PASSWORD: 'r',
};
const config = buildConfig(defaults, {}, '/repo');
const parse = (text: string) =>
  Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );

describe('kafkaServerProperties', () => {
  it('binds broker and controller to loopback and stores data under STATE_DIR', () => {
    const props = parse(kafkaServerProperties(config));
    expect(props.listeners).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093');
    expect(props['controller.quorum.voters']).toBe('1@127.0.0.1:9093');
    expect(props['process.roles']).toBe('broker,controller');
    expect(props['log.dirs']).toBe('/repo/.local/data/kafka');
    expect(props['offsets.topic.replication.factor']).toBe('1');
  });

  it('follows port overrides from the environment', () => {
    const other = buildConfig(defaults, { KAFKA_PORT: '19092', STATE_DIR: '/tmp/s' }, '/repo');
    const props = parse(kafkaServerProperties(other));
    expect(props['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(props['log.dirs']).toBe('/tmp/s/data/kafka');
  });
});

describe('connectWorkerProperties', () => {
  it('listens on loopback, finds plugins in the cache and enables env and file config providers', () => {
    const props = parse(connectWorkerProperties(config));
    expect(props.listeners).toBe('http://127.0.0.1:8083');
    expect(props['plugin.path']).toBe('/repo/.local/connect-plugins');
    expect(props['config.providers']).toBe('env,file');
    expect(props['config.providers.env.class']).toBe('org.apache.kafka.common.config.provider.EnvVarConfigProvider');
    expect(props['config.providers.file.class']).toBe('org.apache.kafka.common.config.provider.FileConfigProvider');
    expect(props['config.storage.replication.factor']).toBe('1');
  });

  it("lets connector configs resolve only the project's own variables and secrets folder", () => {
    const props = parse(connectWorkerProperties(config));
    const allowed = new RegExp(`^(?:${props['config.providers.env.param.allowlist.pattern']})$`);
    expect(allowed.test('PG_SINK_PASSWORD')).toBe(true);
    expect(allowed.test('TOPIC')).toBe(true);
    for (const name of ['PG_ADMIN_PASSWORD', 'REGISTRY_DB_PASSWORD', 'HOME', 'PATH', 'PG_SINK_PASSWORD_X'])
      expect(allowed.test(name), name).toBe(false);
    expect(props['config.providers.file.param.allowed.paths']).toBe('/repo/.local/secrets');
    expect(props['connector.client.config.override.policy']).toBe('Allowlist');
  });
});

describe('postgresConf', () => {
  it('preloads pg_cron for the pipeline database and listens on loopback only', () => {
    const conf = postgresConf(config);
    expect(conf).toContain("shared_preload_libraries = 'pg_cron'");
    expect(conf).toContain("cron.database_name = 'kafka_data'");
    expect(conf).toContain("listen_addresses = '127.0.0.1'");
    expect(conf).toContain('port = 5433');
    expect(conf).toContain('jit = off');
  });
});

describe('buildConfig', () => {
  it('rejects a port that is not a number with a one-line fix', () => {
    expect(() => buildConfig(defaults, { PG_PORT: 'abc' }, '/repo')).toThrow(/PG_PORT=abc is not a TCP port: set it/);
  });
  it('names a missing key', () => {
    const { KAFKA_PORT: _, ...rest } = defaults;
    expect(() => buildConfig(rest, {}, '/repo')).toThrow(/KAFKA_PORT is not set/);
  });
});

describe('kafkaClusterId', () => {
  it('makes 22-character base64url ids that never start with a dash', () => {
    const bytes = [Buffer.alloc(16, 0xfb), Buffer.alloc(16, 7)];
    const id = kafkaClusterId(() => bytes.shift()!);
    expect(id).toBe(Buffer.alloc(16, 7).toString('base64url'));
    expect(kafkaClusterId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  });
});

describe('java versions', () => {
  it('reads the major version of modern and legacy version strings', () => {
    expect(javaMajor('openjdk version "17.0.15" 2025-04-15')).toBe(17);
    expect(javaMajor('openjdk version "25" 2025-09-16')).toBe(25);
    expect(javaMajor('java version "1.8.0_402"')).toBe(8);
    expect(javaMajor('bash: java: command not found')).toBeNull();
  });
  it('picks the newest JDK at or above the minimum', () => {
    const jdks = [
      { home: '/jvm/17', release: 'JAVA_VERSION="17.0.15"' },
      { home: '/jvm/25', release: 'JAVA_VERSION="25.0.1"' },
      { home: '/jvm/21', release: 'JAVA_VERSION="21.0.4"' },
    ];
    expect(pickJdk(jdks, 21)?.home).toBe('/jvm/25');
    expect(pickJdk(jdks.slice(0, 1), 21)).toBeUndefined();
  });
});

describe('table and properties', () => {
  it('aligns columns', () => {
    expect(table(['a', 'bb'], [['xxx', 'y']])).toBe('a    bb\n---  --\nxxx  y');
  });
  it('writes key=value lines', () => {
    expect(toProperties({ a: 1, 'b.c': 'x' })).toBe('a=1\nb.c=x\n');
  });
});

describe('jvmFlags', () => {
  it("adds the service's collector, unless the heap setting chose one", () => {
    expect(jvmFlags(config, 'kafka', '-Xmx512m')).toEqual(expect.arrayContaining(['-Xmx512m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20']));
    const connect = jvmFlags(config, 'connect', '-Xmx768m', COLLECTORS.throughput);
    expect(connect).toContain('-XX:+UseParallelGC');
    expect(connect).not.toContain('-XX:+UseG1GC');
    const chosen = jvmFlags(config, 'connect', '-Xmx768m -XX:+UseSerialGC', COLLECTORS.throughput);
    expect(chosen.filter((f) => /^-XX:\+Use\w+GC$/.test(f))).toEqual(['-XX:+UseSerialGC']);
  });
});
