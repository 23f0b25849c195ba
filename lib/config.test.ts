import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { bootstrapList, buildConfig } from './config.mjs';

const defaults = parseEnv(fs.readFileSync(path.join(import.meta.dirname, '..', '.env'), 'utf8'));
const build = (env: Record<string, string> = {}) => buildConfig(defaults, env, '/repo');
const external = {
  PLATFORM: 'external',
  KAFKA_BOOTSTRAP_SERVERS: 'b1.example.com:9092, b2.example.com:9092',
  SCHEMA_REGISTRY_URL: 'https://registry.example.com/apis/ccompat/v7',
  CONNECT_URL: 'https://connect.example.com/',
};

describe('the local platform', () => {
  it('is one plaintext node, replication 1, one Connect worker, by default', () => {
    const c = build();
    expect(c.platform).toBe('local');
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.kafka.bootstrap).toBe('127.0.0.1:9092');
    expect(c.kafka.nodes).toEqual([{ id: 1, name: 'kafka', port: 9092, controllerPort: 9093 }]);
    expect([c.kafka.replicationFactor, c.kafka.minInsyncReplicas]).toEqual([1, 1]);
    expect(c.kafka.security).toMatchObject({ protocol: 'PLAINTEXT', sasl: false, tls: false, caFile: undefined });
    // Connect's REST API asks for credentials in every local shape.
    expect([c.connect.workers, c.connect.auth, c.connect.username]).toEqual([1, true, 'admin']);
    expect(c.pg.sslmode).toBe('disable');
  });

  it('commits no password: every one is left to the generated credentials', () => {
    expect(Object.keys(defaults).filter((key) => /PASSWORD/.test(key))).toEqual([]);
    const c = build();
    expect([c.pg.adminPassword, c.registry.password, ...Object.values(c.pg.roles).map((r) => r.password)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(build({ PG_SINK_PASSWORD: 'given' }).pg.roles.sink.password).toBe('given');
  });

  it('refuses a value that would add or break a line of a properties or conf file', () => {
    expect(() => build({ PG_DATABASE: "kafka_data'\nshared_preload_libraries = 'evil" })).toThrow(
      /PG_DATABASE holds a line break or control character/,
    );
    expect(() => build({ TOPIC: 'synthetic_data\nlisteners=PLAINTEXT://0.0.0.0:9092' })).toThrow(/TOPIC holds a line break/);
    expect(() => build({ PG_SINK_PASSWORD: 'a\rb' })).toThrow(/PG_SINK_PASSWORD holds a line break/);
    expect(() => build({ PG_DATABASE: "kafka'data" })).toThrow(/PG_DATABASE=kafka'data holds a quote or a backslash/);
    expect(() => build({ PG_HOST: '127.0.0.1\\' })).toThrow(/PG_HOST=.* holds a quote or a backslash/);
    expect(() => build({ STATE_DIR: '/tmp/"x' })).toThrow(/STATE_DIR=.* holds a quote/);
    expect(() => build({ DLQ_TOPIC: 'dead letters' })).toThrow(/DLQ_TOPIC=dead letters is not a Kafka name/);
    // Spaces are fine where a file takes them (the JVM flags, a folder).
    expect(build({ STATE_DIR: '/tmp/my state', KAFKA_HEAP: '-Xms1g -Xmx1g' }).stateDir).toBe('/tmp/my state');
  });

  it('KAFKA_BROKERS=3 SASL_SSL: three nodes two ports apart, replication 3 with min ISR 2, two workers, REST auth, the local CA', () => {
    const c = build({ KAFKA_BROKERS: '3', KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', STATE_DIR: '/s' });
    expect(c.kafka.nodes.map((n) => [n.name, n.port, n.controllerPort])).toEqual([
      ['kafka', 9092, 9093],
      ['kafka-2', 9094, 9095],
      ['kafka-3', 9096, 9097],
    ]);
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092', '127.0.0.1:9094', '127.0.0.1:9096']);
    expect([c.kafka.replicationFactor, c.kafka.minInsyncReplicas]).toEqual([3, 2]);
    expect(c.kafka.security).toMatchObject({
      protocol: 'SASL_SSL',
      mechanism: 'SCRAM-SHA-512',
      sasl: true,
      tls: true,
      caFile: '/s/tls/ca.pem',
    });
    expect(c.kafka.users).toEqual({
      admin: { username: 'admin', password: undefined },
      producer: { username: 'producer', password: undefined },
      connect: { username: 'connect', password: undefined },
      dashboard: { username: 'dashboard', password: undefined },
    });
    expect([c.connect.workers, c.connect.auth, c.connect.username]).toEqual([2, true, 'admin']);
  });

  it('CONNECT_WORKERS overrides the shape; a password set wins over the generated one', () => {
    const c = build({ KAFKA_BROKERS: '3', CONNECT_WORKERS: '1', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_PASSWORD: 'p' });
    expect(c.connect.workers).toBe(1);
    expect(c.kafka.users.admin).toEqual({ username: 'admin', password: 'p' });
    expect(c.kafka.users.producer).toEqual({ username: 'producer', password: undefined });
  });

  it('refuses what it cannot run, in one line naming the fix', () => {
    expect(() => build({ KAFKA_SECURITY_PROTOCOL: 'SSL' })).toThrow(
      /the local platform runs PLAINTEXT or SASL_SSL; use SSL with PLATFORM=external/,
    );
    expect(() => build({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN' })).toThrow(/set SCRAM-SHA-512/);
    expect(() => build({ KAFKA_SECURITY_PROTOCOL: 'TLS' })).toThrow(
      /KAFKA_SECURITY_PROTOCOL=TLS is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL/,
    );
    expect(() => build({ KAFKA_BROKERS: '0' })).toThrow(/KAFKA_BROKERS=0 is not a positive integer/);
    expect(() => build({ KAFKA_BROKERS: '9' })).toThrow(/1 to 5/);
    expect(() => build({ KAFKA_BROKERS: '2', KAFKA_CONTROLLER_PORT: '9094' })).toThrow(/collide/);
    expect(() => build({ PG_SSLMODE: 'prefer' })).toThrow(/PG_SSLMODE=prefer is not one of disable, require, verify-ca, verify-full/);
    expect(() => build({ PLATFORM: 'cloud' })).toThrow(/PLATFORM=cloud is not one of local, external/);
  });
});

describe('PLATFORM=external', () => {
  it('takes the endpoints as given: a broker list, the cluster default replication, one identity for all', () => {
    const c = build({
      ...external,
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'key',
      KAFKA_SASL_PASSWORD: 'secret',
      SCHEMA_REGISTRY_USERNAME: 'sr',
      SCHEMA_REGISTRY_PASSWORD: 'srp',
      CONNECT_URL_USERNAME: 'cu',
      CONNECT_URL_PASSWORD: 'cp',
      PG_SSLMODE: 'verify-full',
    });
    expect(c.kafka.brokers).toEqual(['b1.example.com:9092', 'b2.example.com:9092']);
    expect(c.kafka.bootstrap).toBe('b1.example.com:9092,b2.example.com:9092');
    expect([c.kafka.replicationFactor, c.kafka.minInsyncReplicas]).toEqual([-1, 1]);
    expect(c.kafka.security).toMatchObject({ protocol: 'SASL_SSL', mechanism: 'PLAIN', caFile: undefined });
    for (const who of ['admin', 'producer', 'connect'] as const)
      expect(c.kafka.users[who]).toEqual({ username: 'key', password: 'secret' });
    expect(c.registry).toMatchObject({ url: 'https://registry.example.com', auth: { username: 'sr', password: 'srp' } });
    expect(c.connect).toMatchObject({ url: 'https://connect.example.com', auth: true, username: 'cu', password: 'cp' });
    expect(c.pg.sslmode).toBe('verify-full');
  });

  it('gives the producer and Connect their own users when set', () => {
    const c = build({
      ...external,
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_USERNAME: 'ops',
      KAFKA_SASL_PASSWORD: 'o',
      KAFKA_PRODUCER_SASL_USERNAME: 'writer',
      KAFKA_PRODUCER_SASL_PASSWORD: 'w',
      KAFKA_SSL_CA_FILE: 'certs/ca.pem',
    });
    expect(c.kafka.users.producer).toEqual({ username: 'writer', password: 'w' });
    expect(c.kafka.users.connect).toEqual({ username: 'ops', password: 'o' });
    expect(c.kafka.security.caFile).toBe('/repo/certs/ca.pem');
  });

  it('names what is missing', () => {
    expect(() => build({ PLATFORM: 'external' })).toThrow(
      /PLATFORM=external needs KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, CONNECT_URL: set them/,
    );
    expect(() => build({ ...external, KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' })).toThrow(
      /KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
    );
    expect(() => build({ ...external, CONNECT_PASSWORD: 'x' })).toThrow(/CONNECT_PASSWORD is set but CONNECT_USERNAME is not/);
  });
});

describe('bootstrapList', () => {
  it('splits, trims and checks host:port', () => {
    expect(bootstrapList(' a:1 ,b.c:9092,[::1]:9093,')).toEqual(['a:1', 'b.c:9092', '[::1]:9093']);
    expect(bootstrapList(undefined)).toBeUndefined();
    expect(() => bootstrapList('a:1,b')).toThrow(/not a comma-separated list of host:port \(b\)/);
    expect(() => bootstrapList('PLAINTEXT://a:9092')).toThrow(/host:port/);
    expect(() => bootstrapList(' , ')).toThrow(/host:port/);
  });
});
