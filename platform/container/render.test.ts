import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '#lib/config.mjs';
import { connectContainerProperties, kafkaContainerProperties } from './render.mjs';

const defaults = parseEnv(fs.readFileSync(path.join(ROOT, '.env'), 'utf8'));
const props = (text: string) =>
  Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
const placeholders = (text: string) => [...new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]))].sort();
// The variables platform/container/jvm.sh fills in at start.
const filled = /for var in ([\w ]+); do/
  .exec(fs.readFileSync(path.join(ROOT, 'platform/container/jvm.sh'), 'utf8'))![1]
  .split(' ')
  .sort();

describe('the containers’ broker and worker properties', () => {
  it('leave only placeholders the entrypoint fills in, each set in docker-compose.yml', () => {
    const compose = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    for (const text of [kafkaContainerProperties(defaults), connectContainerProperties(defaults)]) {
      for (const name of placeholders(text)) {
        expect(filled).toContain(name);
        expect(compose).toMatch(new RegExp(`${name}: \\$\\{${name}\\}`));
      }
    }
    expect(placeholders(kafkaContainerProperties(defaults))).toEqual(['KAFKA_PORT']);
    expect(placeholders(connectContainerProperties(defaults))).toEqual(['CONNECT_GROUP_ID']);
  });

  it('advertise the compose network and the host, each on its own listener', () => {
    const kafka = props(kafkaContainerProperties(defaults));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder jvm.sh fills in
    expect(kafka['advertised.listeners']).toBe('INTERNAL://kafka:29092,EXTERNAL://127.0.0.1:${KAFKA_PORT}');
    expect(kafka['inter.broker.listener.name']).toBe('INTERNAL');
    expect(kafka['num.partitions']).toBe(defaults.TOPIC_PARTITIONS);
  });

  it('give the worker the native config providers, limited to the project’s variables and the image’s secrets folder', () => {
    const connect = props(connectContainerProperties(defaults));
    expect(connect['bootstrap.servers']).toBe('kafka:29092');
    expect(connect['config.providers.env.param.allowlist.pattern'].split('|')).toContain('REGISTRY_API_URL');
    expect(connect['config.providers.file.param.allowed.paths']).toBe('/opt/kafka/secrets');
    expect(connect['connector.client.config.override.policy']).toBe('Allowlist');
  });

  it('ask for credentials on the worker’s REST API, with the login module jvm.sh configures', () => {
    const connect = props(connectContainerProperties(defaults));
    expect(connect['rest.extension.classes']).toBe('org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension');
    const jvm = fs.readFileSync(path.join(ROOT, 'platform/container/jvm.sh'), 'utf8');
    expect(jvm).toContain('-Djava.security.auth.login.config=/tmp/connect-rest.jaas');
    expect(jvm).toContain('org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule');
  });
});
