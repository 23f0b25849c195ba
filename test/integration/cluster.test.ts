// The production shape: three KRaft nodes (replication 3, min.insync.replicas
// 2), SCRAM-SHA-512 over TLS with the platform's own CA, ACLs per component,
// two Connect workers behind basic auth. The platform runs in a state folder
// and on ports of its own beside the default one; the pipeline's commands
// reach it as a user reaches a cluster of theirs: PLATFORM=external and the
// endpoints and credentials in the environment.
import fs from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, loadConfig, ROOT } from '#lib/config.mjs';
import { basicHeader, credentialFile, pgPassword } from '#lib/credentials.mjs';
import { createKafka, kafkaClient, topicSize, withKafkaAdmin } from '#lib/kafka.mjs';
import { pgClient } from '#lib/pg.mjs';
import { cmdline, freePortRange, isAlive, readText } from '#lib/procs.mjs';
import { allInSync, externalEnv, resetPipeline, rssMb, secondPlatformEnv, waitLoaded } from '../../bench/lib.mjs';
import { runEtl } from '../../ops/etl.mjs';
import { migrate } from '../../ops/migrate.mjs';
import { down, ourPids, services, up } from '../../platform/lifecycle.mjs';
import { ensureTls } from '../../platform/tls.mjs';
import {
  cli,
  dist,
  expectedChecksums,
  NO_DIFFERENCE,
  readDataset,
  summariesDifferFromRecompute,
  tableChecksums,
  tempDir,
  until,
} from './helpers.js';

const ROWS = 527_040;
const state = tempDir('cluster');
const userState = tempDir('cluster-user');
const report: string[][] = [];
let sec: ReturnType<typeof loadConfig>;
let platformEnv: Record<string, string>;
/** What a user of the cluster sets: PLATFORM=external, endpoints, credentials. */
let external: Record<string, string>;
let expected: ReturnType<typeof expectedChecksums>;
let db: ReturnType<typeof pgClient>;

const password = (name: string) => fs.readFileSync(credentialFile(sec, name), 'utf8').trim();
const pidOf = (name: string) => Number(readText(path.join(sec.runDir, `${name}.pid`)));
const rowsLanded = async () => Number((await db.query('select count(*)::int as n from synthetic_data')).rows[0].n);
/** Errors printed as one `error:` line, nothing else on stderr. */
const oneLine = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  return lines[0];
};

beforeAll(async () => {
  platformEnv = secondPlatformEnv({
    stateDir: state,
    cacheDir: config.cacheDir,
    base: await freePortRange(12),
    brokers: 3,
    protocol: 'SASL_SSL',
  });
  sec = loadConfig(ROOT, { ...process.env, ...platformEnv });
  await up(sec, { log: () => {} });
  await migrate(sec);
  db = pgClient(sec);
  await db.connect();
  external = externalEnv(sec, userState);
  if (!fs.existsSync(config.datasetFile)) await dist('dataset/generate-cli.js', ['--out', config.datasetFile]).done;
  expected = expectedChecksums(await readDataset(config.datasetFile));
}, 300_000);

afterAll(async () => {
  await db?.end().catch(() => {});
  if (sec) await down(sec);
  fs.rmSync(state, { recursive: true, force: true });
  fs.rmSync(userState, { recursive: true, force: true });
  console.log(
    `\nthe three-node SASL_SSL cluster\n${['load', 'rows landed', 'records in Kafka', 'duplicates', 'dead letters', 'values equal the file', 'rows/s', 'seconds'].join(' | ')}\n${report.map((r) => r.join(' | ')).join('\n')}`,
  );
}, 120_000);

/** The full year sent as the user's external producer; `fault` once 100,000 rows have landed. */
async function loadThrough(name: string, fault: (producer: ReturnType<typeof dist>) => Promise<string>) {
  await resetPipeline(sec);
  const started = Date.now();
  const producer = dist('producer/cli.js', ['--file', config.datasetFile, '--restart'], external, 900_000);
  await until(async () => (await rowsLanded()) > 100_000, 180_000, '100,000 rows before the fault');
  const note = await fault(producer);
  const res = await producer.done;
  expect(res.code, res.stderr).toBe(0);
  await waitLoaded(sec, ROWS, 300_000);
  const seconds = (Date.now() - started) / 1000;
  const inKafka = await withKafkaAdmin(sec, (admin) => topicSize(admin, sec.pipeline.topic));
  const dead = await withKafkaAdmin(sec, (admin) => topicSize(admin, sec.pipeline.dlqTopic));
  const checksums = await tableChecksums(db);
  report.push([
    `${name} (${note})`,
    String(await rowsLanded()),
    String(inKafka),
    String(inKafka - ROWS),
    String(dead),
    String(JSON.stringify(checksums) === JSON.stringify(expected)),
    String(Math.round(ROWS / seconds)),
    seconds.toFixed(1),
  ]);
  expect(checksums).toEqual(expected);
  // The topic was emptied first: a record beyond the file's rows is one sent twice.
  expect(inKafka).toBe(ROWS);
  expect(dead).toBe(0);
  await runEtl(sec);
  expect(await summariesDifferFromRecompute(db)).toEqual(NO_DIFFERENCE);
}

/** SIGKILL one node and wait until it is gone. */
async function kill(name: string) {
  const pid = pidOf(name);
  process.kill(pid, 'SIGKILL');
  await until(async () => !isAlive(pid), 10_000, `${name} gone`);
}

describe('a three-node SASL_SSL cluster with ACLs', () => {
  it('replicates the pipeline topics three times, two in sync required; Connect runs two workers', async () => {
    await resetPipeline(sec);
    const meta = await withKafkaAdmin(sec, async (admin) => {
      const cluster = await admin.describeCluster();
      const { topics } = await admin.fetchTopicMetadata({ topics: [sec.pipeline.topic] });
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: sec.pipeline.topic, configNames: ['min.insync.replicas'] }],
      });
      return { brokers: cluster.brokers.length, replicas: topics[0].partitions.map((p) => p.replicas.length), configs };
    });
    expect(meta.brokers).toBe(3);
    expect(meta.replicas).toEqual(Array(sec.pipeline.partitions).fill(3));
    expect(meta.configs.resources[0].configEntries[0].configValue).toBe('2');
    const headers = { authorization: basicHeader({ username: 'admin', password: password('connect-admin') }) };
    const workers = await Promise.all(
      [sec.connect.port, sec.connect.port + 1].map(async (port) => (await fetch(`http://127.0.0.1:${port}/`, { headers })).status),
    );
    expect(workers).toEqual([200, 200]);
  });

  it('Connect REST: 401 without credentials or with wrong ones; status says which keys to check', async () => {
    expect((await fetch(`${sec.connect.url}/connectors`)).status).toBe(401);
    const wrong = { authorization: basicHeader({ username: 'admin', password: 'wrong' }) };
    expect((await fetch(`${sec.connect.url}/connectors`, { headers: wrong })).status).toBe(401);
    const res = await cli('status.mjs', [], { ...external, CONNECT_PASSWORD: 'wrong' });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/problem: connect is down: HTTP 401: check CONNECT_USERNAME and CONNECT_PASSWORD/);
  });

  it('a wrong password or an untrusted CA fails in one line naming the fix', async () => {
    const status = await cli('platform.mjs', ['status'], { ...external, KAFKA_SASL_PASSWORD: 'wrong' });
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/Kafka refused the admin's credentials \(.*\): check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/);

    const args = ['--file', config.datasetFile, '--limit', '100', '--restart'];
    const producer = await dist('producer/cli.js', args, { ...external, KAFKA_PRODUCER_SASL_PASSWORD: 'wrong' }, 60_000).done;
    expect(producer.code).toBe(1);
    expect(oneLine(producer.stderr)).toMatch(
      /^error: Kafka refused the producer's credentials \(.*\): check KAFKA_PRODUCER_SASL_USERNAME\/_PASSWORD/,
    );

    // A CA of another cluster: the brokers' certificates are not signed by it.
    const stranger = ensureTls({ stateDir: tempDir('stranger-ca') } as typeof sec).ca;
    const untrusted = await dist('producer/cli.js', args, { ...external, KAFKA_SSL_CA_FILE: stranger }, 60_000).done;
    expect(untrusted.code).toBe(1);
    expect(oneLine(untrusted.stderr)).toMatch(/^error: Kafka's TLS certificate is not trusted \(.*\): set KAFKA_SSL_CA_FILE/);
    const missing = await cli('status.mjs', [], { ...external, KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/cannot read the Kafka CA file \/nonexistent\/ca.pem \(ENOENT\): set KAFKA_SSL_CA_FILE/);
  }, 180_000);

  it('refuses a client without an ACL for the topic', async () => {
    // The producer's user may write its own topics only.
    const res = await dist('producer/cli.js', ['--file', config.datasetFile, '--limit', '10', '--topic', 'not_granted'], external, 60_000)
      .done;
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toMatch(/^error: Kafka denied the producer \(TOPIC_AUTHORIZATION_FAILED: .*\): grant its user ACLs/);
    // Connect's user may read the topic, never write it.
    const asConnect = createKafka(kafkaClient(sec, 'connect'), { clientId: 'acl-test' }).producer();
    await asConnect.connect();
    try {
      await expect(asConnect.send({ topic: sec.pipeline.topic, messages: [{ key: '1', value: 'not Avro' }] })).rejects.toMatchObject({
        type: 'TOPIC_AUTHORIZATION_FAILED',
      });
    } finally {
      await asConnect.disconnect();
    }
    expect(await withKafkaAdmin(sec, (admin) => admin.listTopics())).not.toContain('not_granted');
  }, 120_000);

  it('lands the full year exactly once while a broker is SIGKILLed mid-load and brought back', async () => {
    await loadThrough('one of three nodes SIGKILL', async () => {
      const killedAt = Date.now();
      const before = await rowsLanded();
      await kill('kafka-2');
      await until(async () => (await rowsLanded()) > before + 10_000, 120_000, 'rows landing with a node down');
      const landing = (Date.now() - killedAt) / 1000;
      await up(sec, { log: () => {} });
      await until(() => allInSync(sec, 3), 180_000, 'every replica back in sync');
      return `rows kept landing: +10,000 in ${landing.toFixed(1)} s; back in sync ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`;
    });
  }, 900_000);

  it('with two nodes down the producer waits, and resumes once one returns: nothing lost, nothing twice', async () => {
    await loadThrough('two of three nodes SIGKILL', async (producer) => {
      await Promise.all([kill('kafka-2'), kill('kafka-3')]);
      try {
        // No quorum and one replica in sync of the three: nothing more is
        // acknowledged, and the producer waits. The sink may still drain what
        // was acknowledged before (the producer runs ahead of it): wait until
        // the table stops growing, then it must stay still.
        let stalled = await rowsLanded();
        await until(
          async () => {
            await new Promise((resolve) => setTimeout(resolve, 3000));
            const now = await rowsLanded();
            const still = now === stalled;
            stalled = now;
            return still;
          },
          90_000,
          'the sink to drain what was acknowledged before the kill',
        );
        await new Promise((resolve) => setTimeout(resolve, 15_000));
        expect(producer.child.exitCode).toBeNull();
        expect(await rowsLanded()).toBe(stalled);
        const back = Date.now();
        const node2 = services(sec).find((s) => s.name === 'kafka-2')!;
        await node2.start();
        await until(async () => (await rowsLanded()) > stalled, 240_000, 'rows landing once one node is back');
        const resumed = (Date.now() - back) / 1000;
        return `waited with 2 down until nothing landed for 15 s, rows landing ${resumed.toFixed(1)} s after one came back`;
      } finally {
        // Both nodes back whatever happened, for the tests after this one.
        await up(sec, { log: () => {} });
      }
    });
  }, 900_000);

  it('keeps every secret out of process arguments, logs and connector configs', async () => {
    const secrets = ['kafka-admin', 'kafka-producer', 'kafka-connect', 'connect-admin'].map(password);
    secrets.push(pgPassword(sec, 'sink') as string);
    for (const pid of ourPids(sec)) {
      const argv = cmdline(pid).join(' ');
      for (const s of secrets) expect(argv.includes(s), `pid ${pid}: ${argv.slice(0, 200)}`).toBe(false);
    }
    for (const file of fs.readdirSync(sec.logDir)) {
      const text = fs.readFileSync(path.join(sec.logDir, file), 'utf8');
      for (const s of secrets) expect(text.includes(s), `${file} holds a password`).toBe(false);
    }
    const headers = { authorization: basicHeader({ username: 'admin', password: password('connect-admin') }) };
    const sink = await (await fetch(`${sec.connect.url}/connectors/${sec.sink.connector}/config`, { headers })).text();
    expect(sink).toContain(['${env:', 'PG_SINK_PASSWORD}'].join(''));
    for (const s of secrets) expect(sink.includes(s)).toBe(false);
    // Files that hold one are the owner's only.
    for (const file of [
      ...fs.readdirSync(path.join(state, 'credentials')).map((f) => path.join(state, 'credentials', f)),
      path.join(sec.runDir, 'kafka.properties'),
      path.join(sec.runDir, 'connect.properties'),
    ])
      expect((fs.statSync(file).mode & 0o077).toString(8), file).toBe('0');
  });

  it('PLATFORM=external: the platform commands check the endpoints and never stop anything', async () => {
    const status = await cli('platform.mjs', ['status'], external);
    expect(status.code, status.stdout).toBe(0);
    expect(status.stdout.match(/ ready +[\d.]+ s /g)).toHaveLength(4);
    const stop = await cli('platform.mjs', ['down'], external);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(/nothing of the services is ours to stop/);
    for (const name of ['kafka', 'kafka-2', 'kafka-3', 'connect', 'connect-2', 'postgres'])
      expect(
        services(sec)
          .find((s) => s.name === name)!
          .pid().state,
        name,
      ).toBe('running');
    const all = await cli('status.mjs', [], external);
    expect(all.code, all.stdout).toBe(0);
    expect(all.stdout).toMatch(/all parts up/);
    // Memory of the three-node platform, for the closing note.
    report.push([`memory of the platform's processes (RSS)`, `${rssMb(ourPids(sec))} MB`, '', '', '', '', '', '']);
  });
});
