import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KafkaMessage, ProducerRecord } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '#lib/errors.mjs';
import { acquireLock } from '#lib/lock.mjs';
import {
  Progress,
  type ReplayOptions,
  appendTimeTopics,
  fromDeadLetter,
  fromRejected,
  heldByWatchdog,
  originalTimestamp,
  replay,
  replayLockFile,
} from './replay.js';

// A Kafka of a dead letter queue and a topic, for replay() as a whole: what
// it sends, and when it commits. The pure parts are the real ones.
const fake = vi.hoisted(() => ({
  /** The dead letters, one partition. */
  letters: [] as KafkaMessage[],
  /** The replay group's committed offset. */
  committed: 0,
  /** What happened, in order: `send <n>` when Kafka acknowledges, `commit <offset>`. */
  events: [] as string[],
  sent: [] as { offset: string; timestamp?: string }[],
  /** The sends to fail (1 is the first). */
  failSends: new Set<number>(),
  sends: 0,
  /** While set, a send waits for it. */
  hold: undefined as Promise<void> | undefined,
  clients: 0,
}));

vi.mock('#lib/kafka.mjs', async () => {
  const actual = await vi.importActual<typeof import('#lib/kafka.mjs')>('#lib/kafka.mjs');
  return {
    ...actual,
    checkTrust: async () => {},
    createKafka: () => {
      fake.clients++;
      return {
        admin: () => ({
          connect: async () => {},
          disconnect: async () => {},
          listTopics: async () => ['dlq', 'data'],
          fetchTopicMetadata: async () => ({ topics: [{ partitions: [{}, {}, {}] }] }),
          describeConfigs: async () => ({ resources: [] }),
        }),
        // The replay group's member: batches of 700 from where it seeks, until it leaves.
        consumer: () => {
          let left = false;
          let eachBatch: (payload: unknown) => Promise<void>;
          return {
            connect: async () => {},
            disconnect: async () => {
              left = true;
            },
            subscribe: async () => {},
            run: async (config: { eachBatch: typeof eachBatch }) => {
              eachBatch = config.eachBatch;
            },
            seek: ({ offset }: { offset: string }) => {
              setImmediate(async () => {
                for (let from = Number(offset); from < fake.letters.length && !left; from += 700) {
                  const messages = fake.letters.slice(from, from + 700);
                  const lastOffset = () => messages[messages.length - 1].offset;
                  await eachBatch({ batch: { partition: 0, messages, lastOffset }, heartbeat: async () => {} });
                }
              });
            },
            commitOffsets: async (offsets: { offset: string }[]) => {
              fake.committed = Number(offsets[0].offset);
              fake.events.push(`commit ${fake.committed}`);
            },
          };
        },
        producer: () => ({
          connect: async () => {},
          disconnect: async () => {},
          send: async (record: ProducerRecord) => {
            await fake.hold;
            if (fake.failSends.has(++fake.sends)) throw new Error('KafkaJSNumberOfRetriesExceeded: broker gone');
            for (const m of record.messages) fake.sent.push({ offset: String(m.value), timestamp: m.timestamp });
            fake.events.push(`send ${record.messages.length}`);
          },
        }),
      };
    },
    groupRange: async () => [{ partition: 0, low: 0, from: fake.committed, to: fake.letters.length }],
  };
});

const SENT_AT = String(Date.UTC(2024, 5, 1, 12));
const message = (value: string | Buffer, headers: Record<string, string> = {}, key = '7', timestamp = SENT_AT) =>
  ({
    key: Buffer.from(key),
    value: Buffer.isBuffer(value) ? value : Buffer.from(value),
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
    offset: '0',
    timestamp,
    attributes: 0,
  }) as KafkaMessage;

describe('originalTimestamp', () => {
  it("keeps the record's own timestamp, so the table can tell it from a newer version of its id", () => {
    expect(originalTimestamp({ timestamp: SENT_AT })).toBe(SENT_AT);
    expect(originalTimestamp({ timestamp: '0' })).toBe('0');
  });
  it('leaves a record without one (-1: an old message format) to the producer, as Connect does', () => {
    expect(originalTimestamp({ timestamp: '-1' })).toBeUndefined();
    expect(originalTimestamp({ timestamp: '' })).toBeUndefined();
  });
});

describe('fromDeadLetter', () => {
  it('gives back the bytes Connect could not take, to their partition, without its error headers', () => {
    const out = fromDeadLetter(
      message(Buffer.from([0, 0, 0, 0, 1, 2]), {
        '__connect.errors.topic': 'synthetic_data',
        '__connect.errors.partition': '3',
        '__connect.errors.exception.message': 'registry down',
        trace: 'kept',
      }),
      'synthetic_data',
    );
    expect(out).toEqual({
      message: {
        key: Buffer.from('7'),
        value: Buffer.from([0, 0, 0, 0, 1, 2]),
        headers: { trace: Buffer.from('kept') },
        timestamp: SENT_AT,
      },
      partition: 3,
    });
  });
  it('leaves alone a dead letter of another topic', () => {
    expect(fromDeadLetter(message('x', { '__connect.errors.topic': 'other' }), 'synthetic_data')).toEqual({
      skip: 'from topic other, not synthetic_data',
    });
  });
  it('lets the partitioner choose when the partition header is missing', () => {
    expect(fromDeadLetter(message('x'), 'synthetic_data')).toMatchObject({ partition: -1 });
  });
});

describe('fromRejected', () => {
  const encode = (record: object) => Buffer.from(JSON.stringify(record));
  const rejected = (row: object) => message(JSON.stringify({ reason: 'was bad', row }));
  it('sends a row that passes validation now, keyed and partitioned by id', () => {
    const out = fromRejected(rejected({ id: '42', timestamp: '2024-01-01T00:00:00.000Z', stock_price: 1.5, sales_trend: 2 }), 4, encode);
    expect(out).toMatchObject({ message: { key: Buffer.from('42'), timestamp: SENT_AT } });
    if (!('message' in out)) throw new Error('expected a message');
    expect(JSON.parse(String(out.message.value))).toEqual({ id: 42, timestamp: Date.UTC(2024, 0, 1), stock_price: 1.5, sales_trend: 2 });
    expect(out.partition).toBeGreaterThanOrEqual(0);
    expect(out.partition).toBeLessThan(4);
  });
  it('keeps out a row that still fails, with the reason', () => {
    expect(fromRejected(rejected({ id: '42', timestamp: '2024-01-01T00:00:00Z', stock_price: -1, sales_trend: 2 }), 4, encode)).toEqual({
      invalid: 'stock_price -1 is negative',
    });
    expect(fromRejected(message('not json'), 4, encode)).toEqual({ invalid: 'not a rejected-row message (no JSON row)' });
  });
});

describe('Progress', () => {
  it('commits, after each flush, the offset after the last record read of each partition that moved', () => {
    const p = new Progress();
    expect(p.due()).toEqual([]);
    p.read(2, 10);
    p.read(0, 4);
    p.read(2, 11);
    expect(p.due()).toEqual([
      { partition: 0, offset: '5' },
      { partition: 2, offset: '12' },
    ]);
    p.commit(p.due());
    expect(p.due()).toEqual([]);
    p.read(0, 5);
    expect(p.due()).toEqual([{ partition: 0, offset: '6' }]);
  });
  it('counts the first record of a partition: it moves the partition to offset 1', () => {
    const p = new Progress();
    p.read(1, 0);
    expect(p.due()).toEqual([{ partition: 1, offset: '1' }]);
  });
});

describe('replayLockFile', () => {
  it('is one per quarantine, under the run folder', () => {
    expect(replayLockFile('/s/run', 'synthetic_data.dlq')).toBe('/s/run/replay/synthetic_data.dlq.lock');
    expect(replayLockFile('/s/run', 'synthetic_data.rejected')).not.toBe(replayLockFile('/s/run', 'synthetic_data.dlq'));
  });
});

describe('heldByWatchdog', () => {
  it('tells the watchdog, wherever it runs from, from a person', () => {
    expect(heldByWatchdog({ argv: ['/usr/bin/node', '/srv/kafka-pg-pipeline/scripts/watchdog.mjs', 'kpp-marker'] })).toBe(true);
    expect(heldByWatchdog({ argv: ['/usr/bin/node', '/srv/kafka-pg-pipeline/dist/producer/replay-cli.js'] })).toBe(false);
    expect(heldByWatchdog({ argv: ['/usr/bin/node', '/srv/not-the-watchdog.mjs'] })).toBe(false);
  });
});

describe('appendTimeTopics', () => {
  const topic = (resourceName: string, configValue: string) => ({
    resourceName,
    configEntries: [{ configName: 'message.timestamp.type', configValue }],
  });
  it('names the topics that stamp records as they arrive', () => {
    expect(appendTimeTopics({ resources: [topic('dlq', 'LogAppendTime'), topic('data', 'CreateTime')] })).toEqual(['dlq']);
    expect(appendTimeTopics({ resources: [] })).toEqual([]);
  });
});

describe('replay', () => {
  let runDir: string;
  const opts = (): ReplayOptions => ({
    kafka: { brokers: ['kafka:9092'] },
    registryUrl: 'http://registry',
    topic: 'data',
    subject: 'data-value',
    source: { kind: 'dlq', topic: 'dlq', group: 'dlq-replay' },
    runDir,
    batchRecords: 1000,
  });
  const letters = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      ...message(
        String(i),
        { '__connect.errors.topic': 'data', '__connect.errors.partition': '1' },
        String(i),
        String(1_700_000_000_000 + i),
      ),
      offset: String(i),
    }));

  beforeEach(() => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-replay-'));
    Object.assign(fake, { letters: letters(2500), committed: 0, events: [], sent: [], failSends: new Set(), sends: 0, hold: undefined });
  });
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  it('sends each record with its original timestamp, and commits how far it got as Kafka acknowledges each batch', async () => {
    const r = await replay(opts());
    expect(r).toMatchObject({ pending: 2500, sent: 2500, warnings: [] });
    expect(fake.events).toEqual(['send 1000', 'commit 1000', 'send 1000', 'commit 2000', 'send 500', 'commit 2500', 'commit 2500']);
    expect(fake.sent[1234]).toEqual({ offset: '1234', timestamp: String(1_700_000_000_000 + 1234) });
    // The lock is gone with the replay.
    expect(fs.readdirSync(path.join(runDir, 'replay'))).toEqual([]);
  });

  it('after a failure midway, the next replay sends only what Kafka had not acknowledged', async () => {
    fake.failSends.add(2);
    await expect(replay(opts())).rejects.toThrow(
      /^Kafka did not take the replay \(KafkaJSNumberOfRetriesExceeded: broker gone\): check data and `npm run platform:status`, then replay again/,
    );
    expect(fake.committed).toBe(1000);
    expect(fake.sent).toHaveLength(1000);

    const again = await replay(opts());
    expect(again).toMatchObject({ pending: 1500, sent: 1500 });
    expect(fake.sent.map((m) => Number(m.offset))).toEqual(Array.from({ length: 2500 }, (_, i) => i));
  });

  it('refuses a second replay of the same quarantine while one runs, before it touches Kafka', async () => {
    let release = () => {};
    fake.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = fake.clients;
    const first = replay(opts());
    // The first holds its lock and waits on Kafka.
    await vi.waitFor(() => expect(fake.clients).toBe(before + 1));
    expect(fs.existsSync(replayLockFile(runDir, 'dlq'))).toBe(true);
    const clients = fake.clients;
    const second = replay(opts()).catch((err: unknown) => err);
    const err = await second;
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^another replay \\(pid ${process.pid}, started \\S+Z\\) is sending dlq back to data: wait for it to finish, or stop it \\(\`kill ${process.pid}\`: the next replay goes on after what Kafka acknowledged\\)$`,
      ),
    );
    expect(fake.clients).toBe(clients);
    release();
    expect(await first).toMatchObject({ sent: 2500 });
    // The rejected rows' replay has a lock of its own.
    expect(replayLockFile(runDir, 'rejected')).not.toBe(replayLockFile(runDir, 'dlq'));
  });

  it("waits for the watchdog's replay of dead letters of a passing cause, which holds the same lock for a moment", async () => {
    const argv = process.argv;
    process.argv = [argv[0], '/app/scripts/watchdog.mjs', 'marker'];
    const watchdog = await acquireLock(replayLockFile(runDir, 'dlq'), { what: 'replay' }).finally(() => {
      process.argv = argv;
    });
    const notes: string[] = [];
    const replayed = replay({ ...opts(), note: (line) => notes.push(line) });
    await vi.waitFor(() =>
      expect(notes).toEqual([`the watchdog (pid ${process.pid}) is sending back dead letters of a passing cause: waiting for it`]),
    );
    expect(fake.sends).toBe(0);
    watchdog.release();
    expect(await replayed).toMatchObject({ sent: 2500 });
  });
});
