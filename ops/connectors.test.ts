import { describe, expect, it } from 'vitest';
import { loadConfig } from '#lib/config.mjs';
import { connectEnv, connectorVariables } from '../platform/connect.mjs';
import { connectorFiles } from './connectors.mjs';

// What Connect's EnvVarConfigProvider does with a value, given the worker's environment.
const resolve = (value: string, env: Record<string, string | undefined>) =>
  value.replace(/\$\{env:([^}]+)\}/g, (_, name: string) => {
    if (env[name] === undefined) throw new Error(`\${env:${name}} is not in the worker's environment`);
    return env[name] as string;
  });

describe('connect/*.json', () => {
  // A given sink password: a unit test generates no credentials.
  const config = loadConfig(undefined, { ...process.env, PG_SINK_PASSWORD: 'given' });

  it('names the sink connector the configuration expects', () => {
    expect(connectorFiles(config).map((c) => c.name)).toContain(config.sink.connector);
  });

  it('names only variables the worker is given, and no literal secrets', () => {
    const env = connectEnv(config);
    expect(Object.keys(env).filter((k) => k !== 'PATH' && k !== 'HOME')).toEqual(connectorVariables(config));
    for (const { name, body } of connectorFiles(config)) {
      for (const [key, value] of Object.entries(body)) {
        expect(() => resolve(value, env), `${name}: ${key}`).not.toThrow();
        if (/password/i.test(key)) expect(value, `${name}: ${key}`).toMatch(/^\$\{(env|file):[^}]+\}$/);
      }
    }
  });

  it('follows TOPIC and DLQ_TOPIC from .env or the environment', () => {
    const other = loadConfig(config.root, { ...process.env, PG_SINK_PASSWORD: 'given', TOPIC: 'prices_eu', DLQ_TOPIC: 'prices_eu.dlq' });
    const sink = connectorFiles(other).find((c) => c.name === other.sink.connector)!;
    const env = connectEnv(other);
    expect(resolve(sink.body.topics, env)).toBe('prices_eu');
    expect(resolve(sink.body['errors.deadletterqueue.topic.name'], env)).toBe('prices_eu.dlq');
  });
});
