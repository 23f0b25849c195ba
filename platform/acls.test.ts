import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '#lib/config.mjs';
import { pgSsl } from '#lib/pg.mjs';
import { pipelineAcls } from './acls.mjs';

const defaults = parseEnv(fs.readFileSync(path.join(import.meta.dirname, '..', '.env'), 'utf8'));
const config = buildConfig(defaults, { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_BROKERS: '3' }, '/repo');
const { AclResourceTypes: R, AclOperationTypes: Op, ResourcePatternTypes: P } = kafkajs;

/** What `principal` may do to `name`, as the ACLs say (literal names; prefixed ones by prefix). */
function allowed(principal: string, type: number, name: string) {
  return pipelineAcls(config)
    .filter(
      (a) =>
        a.principal === principal &&
        a.resourceType === type &&
        (a.resourcePatternType === P.PREFIXED ? name.startsWith(a.resourceName) : a.resourceName === name),
    )
    .map((a) => a.operation);
}

describe('pipelineAcls', () => {
  it('lets the producer create and write its two topics, and nothing of Connect or the DLQ', () => {
    expect(allowed('User:producer', R.TOPIC, 'synthetic_data').sort()).toEqual([Op.CREATE, Op.DESCRIBE, Op.WRITE].sort());
    expect(allowed('User:producer', R.TOPIC, 'synthetic_data.rejected')).toContain(Op.WRITE);
    expect(allowed('User:producer', R.TOPIC, 'synthetic_data.dlq')).toEqual([]);
    expect(allowed('User:producer', R.TOPIC, 'kafka-pg-pipeline-connect-configs')).toEqual([]);
    expect(allowed('User:producer', R.GROUP, 'connect-synthetic-data-sink')).toEqual([]);
  });

  it('lets Connect read the topic, write the DLQ, own its internal topics and its groups, and not write the topic', () => {
    expect(allowed('User:connect', R.TOPIC, 'synthetic_data').sort()).toEqual([Op.READ, Op.DESCRIBE].sort());
    expect(allowed('User:connect', R.TOPIC, 'synthetic_data.dlq')).toContain(Op.WRITE);
    expect(allowed('User:connect', R.TOPIC, 'kafka-pg-pipeline-connect-offsets')).toEqual([Op.ALL]);
    expect(allowed('User:connect', R.GROUP, 'kafka-pg-pipeline-connect')).toContain(Op.READ);
    expect(allowed('User:connect', R.GROUP, 'connect-synthetic-data-sink')).toContain(Op.READ);
    expect(allowed('User:connect', R.TOPIC, 'synthetic_data.rejected')).toEqual([]);
    expect(allowed('User:connect', R.GROUP, 'some-other-group')).toEqual([]);
  });

  it('lets the dashboard describe the three topics and the groups whose lag it shows, and nothing more', () => {
    for (const topic of ['synthetic_data', 'synthetic_data.dlq', 'synthetic_data.rejected'])
      expect(allowed('User:dashboard', R.TOPIC, topic), topic).toEqual([Op.DESCRIBE]);
    for (const group of ['connect-synthetic-data-sink', 'synthetic_data.dlq-replay', 'synthetic_data.rejected-replay'])
      expect(allowed('User:dashboard', R.GROUP, group), group).toEqual([Op.DESCRIBE]);
    expect(allowed('User:dashboard', R.TOPIC, 'kafka-pg-pipeline-connect-configs')).toEqual([]);
    expect(allowed('User:dashboard', R.GROUP, 'kafka-pg-pipeline-connect')).toEqual([]);
    expect(allowed('User:dashboard', R.CLUSTER, 'kafka-cluster')).toEqual([]);
  });

  it('gives the dashboard no right that reads records or changes anything', () => {
    const mine = pipelineAcls(config).filter((a) => a.principal === 'User:dashboard');
    expect(mine).toHaveLength(6);
    const forbidden = [Op.ALL, Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.ALTER_CONFIGS, Op.CLUSTER_ACTION, Op.IDEMPOTENT_WRITE];
    expect(mine.filter((a) => forbidden.includes(a.operation))).toEqual([]);
    expect(new Set(mine.map((a) => a.operation))).toEqual(new Set([Op.DESCRIBE]));
    // Literal names only: a prefix would reach topics and groups made later.
    expect(new Set(mine.map((a) => a.resourcePatternType))).toEqual(new Set([P.LITERAL]));
  });

  it('grants nothing to the admin (a super user) and allows only', () => {
    expect(pipelineAcls(config).filter((a) => a.principal === 'User:admin')).toEqual([]);
    expect(new Set(pipelineAcls(config).map((a) => a.permissionType))).toEqual(new Set([kafkajs.AclPermissionTypes.ALLOW]));
  });
});

describe('pgSsl', () => {
  it('maps libpq sslmodes to node-postgres', () => {
    expect(pgSsl('disable')).toBe(false);
    expect(pgSsl('require')).toEqual({ rejectUnauthorized: false });
    expect(pgSsl('verify-full')).toEqual({ rejectUnauthorized: true });
    const ca = pgSsl('verify-ca') as { rejectUnauthorized: boolean; checkServerIdentity: () => unknown };
    expect(ca.rejectUnauthorized).toBe(true);
    expect(ca.checkServerIdentity()).toBeUndefined();
  });
});
