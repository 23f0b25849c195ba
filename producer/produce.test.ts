// produce() end to end against a fake Kafka and registry (mocked below): the
// checkpoint, the lock, the log and the one line of each failure. The real
// Kafka is test/integration's.
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import type { Message } from 'kafkajs';
import protocol from 'kafkajs/src/protocol/error.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '#lib/errors.mjs';
import { generate, writeDataset } from '../dataset/generate.js';
import type { Dataset } from '../dataset/generate.js';
import { CheckpointError, checkpointFile, loadCheckpoint } from './checkpoint.js';
import { ParquetInputError, openParquet } from './parquet.js';
import { produce, sendFile } from './produce.js';
import type { ProduceOptions } from './produce.js';

/** The fake Kafka: what was sent, per topic; what kafkajs was given to log with. */
const kafka = vi.hoisted(() => ({
  sends: [] as { topic: string; messages: Message[]; producer: number }[],
  /** Fails a send, like a broker that refuses it. */
  refuse: undefined as ((topic: string, messages: Message[]) => Error | undefined) | undefined,
  /** Waits before acknowledging each send. */
  delayMs: 0,
  log: undefined as ((line: string) => void) | undefined,
  /** Fails creating or describing a topic. */
  topicError: undefined as Error | undefined,
  /** Connecting never ends, as with a broker that does not answer. */
  connectHangs: false,
  /** kafkajs's timeouts, as the producer set them. */
  requestTimeout: 30_000,
  connectionTimeout: 1000,
  /** Called as each send arrives (a test freezes the broker there). */
  onSend: undefined as (() => void) | undefined,
  /**
   * A broker frozen (SIGSTOP): it answers nothing. A request waits for the
   * thaw, or fails as kafkajs fails it once requestTimeout is past; a connect
   * fails after connectionTimeout; a disconnect waits for the thaw.
   */
  frozen: false,
  thawed: new Set<() => void>(),
  /** Requests that timed out while frozen (every other one has landed all the same). */
  timedOut: 0,
  /** The producers made, in order: the ones below `lostBelow` have lost their sequence (their sends fail). */
  producers: [] as { connected: boolean; disconnected: boolean }[],
  lostBelow: 0,
  /** Connects of new producers to fail, as a broker still out of reach fails them. */
  connectFailures: 0,
  /** A test's own: a request of an earlier test still waiting lands nowhere. */
  epoch: 0,
}));

vi.mock('#lib/kafka.mjs', async () => {
  const { kafkaAccessProblem, checkTrust } = await vi.importActual<typeof import('#lib/kafka.mjs')>('#lib/kafka.mjs');
  const { default: kafkajs } = await import('kafkajs');
  const { default: protocol } = await import('kafkajs/src/protocol/error.js');
  /** A kafkajs error class, built as kafkajs builds it (its types leave out some constructors' arguments). */
  const build = (name: string, ...args: unknown[]) =>
    new (kafkajs as unknown as Record<string, new (...a: unknown[]) => Error>)[name](...args);
  const retries = { retryCount: 30, retryTime: 10_000 };
  /** Resolves true at the thaw, false after `ms` (never without it) of a broker still frozen. */
  const frozenFor = (ms?: number) =>
    new Promise<boolean>((resolve) => {
      const thaw = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer =
        ms === undefined
          ? undefined
          : setTimeout(() => {
              kafka.thawed.delete(thaw);
              resolve(false);
            }, ms);
      kafka.thawed.add(thaw);
    });
  // What kafkajs rejects a send with while the broker is frozen, in turn: the
  // lock another request holds, its retries used up on timeouts, on connects.
  const frozenFailures = [
    () => {
      const lock = build('KafkaJSLockTimeout', 'Timeout while acquiring lock (3 waiting locks)');
      return build('KafkaJSNonRetriableError', lock, { cause: lock });
    },
    () =>
      build(
        'KafkaJSNumberOfRetriesExceeded',
        build('KafkaJSRequestTimeoutError', 'Request Produce(key: 0, version: 7) timed out'),
        retries,
      ),
    () => build('KafkaJSNumberOfRetriesExceeded', build('KafkaJSConnectionError', 'Connection timeout'), retries),
  ];
  return {
    createKafka: (_client: unknown, opts: { log?: (line: string) => void; requestTimeout?: number; connectionTimeout?: number }) => {
      kafka.log = opts.log;
      kafka.requestTimeout = opts.requestTimeout ?? 30_000;
      kafka.connectionTimeout = opts.connectionTimeout ?? 1000;
      return {
        admin: () => ({
          connect: () => (kafka.connectHangs ? new Promise(() => {}) : Promise.resolve()),
          disconnect: async () => {},
        }),
        producer: () => {
          const number = kafka.producers.length;
          const state = { connected: false, disconnected: false };
          kafka.producers.push(state);
          return {
            connect: async () => {
              if (kafka.frozen && !(await frozenFor(kafka.connectionTimeout))) throw build('KafkaJSConnectionError', 'Connection timeout');
              if (number > 0 && kafka.connectFailures > 0) {
                kafka.connectFailures--;
                throw build('KafkaJSNumberOfRetriesExceeded', build('KafkaJSConnectionError', 'Connection timeout'), retries);
              }
              state.connected = true;
            },
            disconnect: async () => {
              if (kafka.frozen) await frozenFor();
              state.disconnected = true;
            },
            send: async ({ topic, messages }: { topic: string; messages: Message[] }) => {
              const epoch = kafka.epoch;
              kafka.onSend?.();
              if (kafka.delayMs) await new Promise((resolve) => setTimeout(resolve, kafka.delayMs));
              if (kafka.frozen && !(await frozenFor(kafka.requestTimeout))) {
                const n = kafka.timedOut++;
                // The broker read it before it froze: it lands, unacknowledged.
                if (n % 2 === 0) kafka.sends.push({ topic, messages, producer: number });
                throw frozenFailures[n % frozenFailures.length]();
              }
              if (epoch !== kafka.epoch) throw new Error('a request of an earlier test');
              if (number < kafka.lostBelow) throw protocol.createErrorFromCode(45);
              const refused = kafka.refuse?.(topic, messages);
              if (refused) throw refused;
              kafka.sends.push({ topic, messages, producer: number });
              return [];
            },
          };
        },
      };
    },
    kafkaAccessProblem,
    checkTrust,
    ensureTopic: async (_admin: unknown, _topic: string, partitions: number) => {
      if (kafka.topicError) throw kafka.topicError;
      return partitions;
    },
  };
});

const freeze = () => {
  kafka.frozen = true;
};
const thaw = () => {
  kafka.frozen = false;
  for (const resume of kafka.thawed) resume();
  kafka.thawed.clear();
};

vi.mock('@kafkajs/confluent-schema-registry', () => ({
  SchemaRegistry: class {
    async register() {
      return { id: 7 };
    }
  },
  SchemaType: { AVRO: 'AVRO' },
  COMPATIBILITY: { BACKWARD: 'BACKWARD' },
}));

/** Kafka's message.max.bytes: a record batch (one partition's messages in one request) larger than this is refused. */
const MESSAGE_MAX_BYTES = 1_048_588;
const tooLarge = (_topic: string, messages: Message[]) => {
  const bytes = messages.reduce((sum, m) => sum + Buffer.byteLength(m.value as string | Buffer) + Buffer.byteLength(String(m.key)), 0);
  return bytes > MESSAGE_MAX_BYTES ? protocol.createErrorFromCode(10) : undefined;
};

let dir: string;
let lines: string[];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kpp-produce-'));
  lines = [];
  kafka.sends = [];
  kafka.refuse = tooLarge;
  kafka.delayMs = 0;
  kafka.log = undefined;
  kafka.topicError = undefined;
  kafka.connectHangs = false;
  kafka.onSend = undefined;
  kafka.epoch++;
  thaw();
  kafka.timedOut = 0;
  kafka.producers = [];
  kafka.lostBelow = 0;
  kafka.connectFailures = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const runDir = () => path.join(dir, 'state', 'run');
const logFile = () => path.join(dir, 'state', 'logs', 'producer.log');

function options(file: string, over: Partial<ProduceOptions> = {}): ProduceOptions {
  return {
    file,
    kafka: { brokers: ['127.0.0.1:1'] },
    registryUrl: 'http://127.0.0.1:1',
    topic: 't',
    rejectedTopic: 't.rejected',
    subject: 't-value',
    partitions: 2,
    runDir: runDir(),
    compression: 'none',
    chunkRows: 250,
    batchMessages: 100,
    log: (line) => lines.push(line),
    kafkaLogFile: logFile(),
    progress: false,
    ...over,
  };
}

function dataset(rows: number, rowGroupSize = 1000, change?: (data: Dataset) => void) {
  const file = path.join(dir, `data-${rows}-${rowGroupSize}.parquet`);
  const data = generate({ rows, seed: 3, start: '2024-01-01T00:00:00Z' });
  change?.(data);
  writeDataset(data, file, rowGroupSize);
  return file;
}

/** Ids sent to topic t since `from` (an index into kafka.sends). */
const sentIds = (from = 0) =>
  kafka.sends
    .slice(from)
    .filter((s) => s.topic === 't')
    .flatMap((s) => s.messages.map((m) => Number(String(m.key))));
const rejections = () =>
  kafka.sends.filter((s) => s.topic === 't.rejected').flatMap((s) => s.messages.map((m) => JSON.parse(String(m.value))));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);
const errorOf = (promise: Promise<unknown>) => promise.then(() => undefined).catch((e: Error) => e);

describe('--from-id never marks unsent rows done', () => {
  it('a 2,000-row file sent with --from-id at its middle, then run plainly, sends the first 1,000 too', async () => {
    const file = dataset(2000);
    const selected = await produce(options(file, { fromId: 1001 }));
    expect(selected).toMatchObject({ read: 2000, sent: 1000, skipped: 1000, complete: true });
    expect(sorted(sentIds())).toEqual(range(1001, 2000));

    const from = kafka.sends.length;
    const plain = await produce(options(file));
    expect(plain).toMatchObject({ startRow: 0, read: 2000, sent: 2000, skipped: 0, complete: true });
    expect(sorted(sentIds(from))).toEqual(range(1, 2000));

    // Each selection keeps its own checkpoint, complete now.
    expect(loadCheckpoint(checkpointFile(runDir(), file, 't'))).toMatchObject({ complete: true, nextRow: 2000 });
    expect(loadCheckpoint(checkpointFile(runDir(), file, 't', 1001))).toMatchObject({ complete: true, fromId: 1001 });
  });

  it('a plain run that stopped is resumed by the next plain run, whatever --from-id ran between', async () => {
    const file = dataset(2000);
    await produce(options(file, { limit: 500 }));
    await produce(options(file, { fromId: 1500 }));
    const from = kafka.sends.length;
    const resumed = await produce(options(file));
    expect(resumed).toMatchObject({ startRow: 500, sent: 1500, complete: true });
    expect(sorted(sentIds(from))).toEqual(range(501, 2000));
    expect(lines).toContain(lines.find((l) => /^resuming at row 500 of 2,000 \(checkpoint /.test(l)));
  });

  it('rejects only rows it selects, and a rerun of the same --from-id rejects nothing again', async () => {
    // Rows 3 and 8 (ids 3 and 8) have a NaN price.
    const file = dataset(10, 1000, (data) => {
      data.stock_price[2] = Number.NaN;
      data.stock_price[7] = Number.NaN;
    });
    const first = await produce(options(file, { fromId: 6 }));
    expect(first).toMatchObject({ read: 10, sent: 4, rejected: 1, skipped: 5 });
    expect(rejections().map((r) => r.row.id)).toEqual(['8']);
    const again = await produce(options(file, { fromId: 6 }));
    expect(again).toMatchObject({ read: 0, sent: 0, rejected: 0 });
    expect(lines.at(-1)).toMatch(/rows with id 6 or more of .* were already produced in full .*--restart sends them again/);
    expect(rejections().map((r) => r.row.id)).toEqual(['8']);
    // The plain run rejects what it selects: every invalid row.
    const plain = await produce(options(file));
    expect(plain).toMatchObject({ read: 10, sent: 8, rejected: 2 });
    expect(rejections().map((r) => r.row.id)).toEqual(['8', '3', '8']);
  });
});

describe('memory bounded whatever the row group size', () => {
  it('sends a file of one large row group in slices, every row once', async () => {
    const file = dataset(150_000, 150_000);
    expect((await openParquet(file)).rowGroups).toHaveLength(1);
    const summary = await produce(options(file, { chunkRows: 4096, batchMessages: 1000 }));
    expect(summary).toMatchObject({ read: 150_000, sent: 150_000, rejected: 0, complete: true });
    const ids = sentIds();
    expect(ids.length).toBe(150_000);
    expect(new Set(ids).size).toBe(150_000);
  });
});

describe('a cell too large for Kafka', () => {
  it('is rejected in a message Kafka takes, which says what was wrong; the run goes on', async () => {
    const file = path.join(dir, 'huge-cell.parquet');
    const data = generate({ rows: 20, seed: 1 });
    data.id[4] = 'x'.repeat(2_000_000);
    writeDataset(data, file);
    const summary = await produce(options(file));
    expect(summary).toMatchObject({ read: 20, sent: 19, rejected: 1, complete: true });
    const [rejected] = kafka.sends.filter((s) => s.topic === 't.rejected').flatMap((s) => s.messages);
    expect(Buffer.byteLength(rejected.value as string)).toBeLessThan(100 * 1024);
    const value = JSON.parse(String(rejected.value));
    expect(value).toMatchObject({ reason: 'id is a 2,000,000-character string, not an integer', row_index: 4 });
    expect(value.row.id).toMatch(/^x+… \[[\d,]+ more characters cut\]$/);
  });
});

describe('one truthful line for every failure', () => {
  /** 3,000 rows in 3 row groups; row group 2's stock_price page header overwritten with garbage. */
  async function corruptFile() {
    const file = dataset(3000, 1000);
    const page = Number((await openParquet(file)).metadata.row_groups[2].columns[2].meta_data!.data_page_offset);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, page);
    fs.closeSync(fd);
    return file;
  }

  it('a corrupt later row group: names the file and the row group, and checkpoints the rows before it', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const file = await corruptFile();
      const err = await errorOf(produce(options(file)));
      expect(err).toBeInstanceOf(ParquetInputError);
      expect(err!.message).toMatch(
        new RegExp(
          `^${file}: row group 2 \\(rows 2,000 to 2,999\\) cannot be read \\(truncated or corrupt\\?\\): .*; the rows before row 2,000 are sent and checkpointed: replace ${file} with a readable copy and run again$`,
        ),
      );
      expect(err!.message).not.toMatch(/Kafka|\n/);
      expect(sorted(sentIds())).toEqual(range(1, 2000));
      expect(loadCheckpoint(checkpointFile(runDir(), file, 't'))).toMatchObject({ nextRow: 2000, complete: false });
      // The next run resumes there and ends the same way, in one line.
      const again = await errorOf(produce(options(file)));
      expect(again).toBeInstanceOf(ParquetInputError);
      expect(lines).toContain(
        `resuming at row 2,000 of 3,000 (checkpoint ${loadCheckpoint(checkpointFile(runDir(), file, 't'))!.updatedAt})`,
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a corrupt row group found while a paced run is stopped: the stop wins, nothing is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const file = await corruptFile();
      const controller = new AbortController();
      kafka.refuse = (topic, messages) => {
        if (sentIds().length >= 500) controller.abort();
        return tooLarge(topic, messages);
      };
      const summary = await produce(options(file, { signal: controller.signal, pace: { mode: 'rate', rowsPerSecond: 20_000 } }));
      expect(summary.stopped).toBe(true);
      expect(summary.complete).toBe(false);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a checkpoint that cannot be written: its path and the fix, not Kafka', async () => {
    const file = dataset(1000);
    const cpFile = checkpointFile(runDir(), file, 't');
    // A folder where the checkpoint file goes: renaming onto it fails.
    fs.mkdirSync(path.join(cpFile, 'in-the-way'), { recursive: true });
    const err = await errorOf(produce(options(file)));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err!.message).toMatch(new RegExp(`^cannot write the checkpoint ${cpFile} \\(E[A-Z]+: .*\\): check ${path.dirname(cpFile)}`));
    expect(err!.message).not.toMatch(/Kafka stopped/);
  });

  it('Kafka refusing rows: the line says so, how far the checkpoint got, and where kafkajs logged', async () => {
    const file = dataset(1000);
    kafka.refuse = () => (sentIds().length >= 500 ? protocol.createErrorFromCode(29) : undefined);
    const err = await errorOf(produce(options(file)));
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toBe(
      `Kafka refused rows for t (Not authorized to access topics: [Topic authorization failed]); 500 rows are checkpointed: fix what it says and run again to resume (kafkajs's log: ${logFile()})`,
    );
    expect(loadCheckpoint(checkpointFile(runDir(), file, 't'))).toMatchObject({ nextRow: 500 });
  });

  it('a stop while Kafka keeps it waiting to connect: ends at once, as a stop', async () => {
    const file = dataset(100);
    kafka.connectHangs = true;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const err = await errorOf(produce(options(file, { signal: controller.signal })));
    expect(err).toBeInstanceOf(UserError);
    expect(err).toMatchObject({ message: 'stopped while connecting to Kafka: nothing was sent', exitCode: 130 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // The lock is released: the next run is not refused.
    kafka.connectHangs = false;
    expect(await produce(options(file))).toMatchObject({ sent: 100 });
  });

  it('Kafka refusing to set up the topics: one line, with the log', async () => {
    const file = dataset(100);
    kafka.topicError = new Error('Topic authorization failed');
    const err = await errorOf(produce(options(file)));
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toBe(
      `Kafka did not set up the topics t and t.rejected or the producer (Topic authorization failed): check it with \`npm run platform:status\` and run again (kafkajs's log: ${logFile()})`,
    );
  });

  it('a state folder that cannot hold the lock: its path and the fix', async () => {
    const file = dataset(100);
    fs.mkdirSync(runDir(), { recursive: true });
    fs.writeFileSync(path.join(runDir(), 'producer'), 'a file where a folder goes');
    const err = await errorOf(produce(options(file)));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err!.message).toMatch(
      new RegExp(`^cannot create the lock ${path.join(runDir(), 'producer')}/checkpoint-\\w+\\.lock \\(E[A-Z]+: .*\\): check `),
    );
  });

  it('a bug of ours keeps its stack: it is not called a Kafka failure', async () => {
    const file = dataset(100);
    const stat = fs.statSync(file);
    const sends: Message[][] = [];
    const err = await errorOf(
      sendFile({
        ...options(file),
        log: (line) => lines.push(line),
        pace: { mode: 'max' },
        source: await openParquet(file),
        schemaId: 7,
        partitions: 2,
        producer: {
          send: async ({ messages }) => {
            sends.push(messages);
            return [];
          },
        },
        cpFile: checkpointFile(runDir(), file, 't'),
        encode: () => {
          throw new TypeError('a bug');
        },
        identity: { file, size: stat.size, mtimeMs: stat.mtimeMs },
      }),
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.message).toBe('a bug');
    expect(sends).toEqual([]);
  });
});

describe('one producer per file and topic', () => {
  it('refuses a second producer while the first runs, naming its pid; the first finishes', async () => {
    const file = dataset(2000);
    kafka.delayMs = 5;
    const first = produce(options(file));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const err = await errorOf(produce(options(file)));
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toMatch(
      new RegExp(
        `^another producer \\(pid ${process.pid}, started [^)]+\\) is sending ${file} to t: wait for it to finish, or stop it \\(Ctrl-C in its terminal, or \`kill ${process.pid}\`: it saves its checkpoint\\)$`,
      ),
    );
    expect(await first).toMatchObject({ sent: 2000, complete: true });
    // Done: the lock is gone, and the next run finds the file complete.
    expect(fs.readdirSync(path.join(runDir(), 'producer')).filter((f) => f.endsWith('.lock'))).toEqual([]);
    expect(await produce(options(file))).toMatchObject({ sent: 0 });
  });

  it('lets a --from-id run and a plain run work at once: they share no state', async () => {
    const file = dataset(2000);
    kafka.delayMs = 2;
    const [plain, selected] = await Promise.all([produce(options(file)), produce(options(file, { fromId: 1001 }))]);
    expect(plain).toMatchObject({ sent: 2000, complete: true });
    expect(selected).toMatchObject({ sent: 1000, complete: true });
  });
});

describe("kafkajs's log", () => {
  it('goes to the log file, not to the terminal', async () => {
    const file = dataset(100);
    await produce(options(file));
    kafka.log!('kafka Connection: Response CreateTopics(key: 19, version: 3)');
    kafka.log!('kafka Producer: Limiting retries for the idempotent producer may invalidate EoS guarantees');
    const text = fs.readFileSync(logFile(), 'utf8');
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z kafka-pg-pipeline producer \(pid \d+\): sending .* to t$/m);
    expect(text).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z kafka Connection: Response CreateTopics\(key: 19, version: 3\)$/m);
    expect(text).toMatch(/Limiting retries/);
    expect(lines.filter((l) => l.startsWith('kafka'))).toEqual([]);
  });

  it('goes to the log function when there is no log file', async () => {
    const file = dataset(100);
    await produce(options(file, { kafkaLogFile: undefined }));
    kafka.log!('kafka Connection: x');
    expect(lines).toContain('kafka Connection: x');
  });
});

describe('Kafka frozen or out of reach mid-run', () => {
  /** Short timeouts: a broker frozen for a fraction of a second outlasts kafkajs's requests. */
  const quick: Partial<ProduceOptions> = {
    requestTimeout: 40,
    connectionTimeout: 20,
    stallWarningMs: 100,
    resendPauseMs: [10, 40],
    stopWaitMs: 100,
  };
  /** A kafkajs error class, built as kafkajs builds it (its types leave out some constructors' arguments). */
  const build = (name: string, ...args: unknown[]) =>
    new (kafkajs as unknown as Record<string, new (...a: unknown[]) => Error>)[name](...args);

  /** Freezes the broker once `rows` rows of t have landed, and runs `then` `afterMs` later. */
  function freezeAt(rows: number, afterMs: number, then: () => void) {
    let froze = false;
    kafka.onSend = () => {
      if (froze || sentIds().length < rows) return;
      froze = true;
      freeze();
      setTimeout(then, afterMs);
    };
  }

  /**
   * Every id of `expected` landed on t at least once, and each partition took
   * its requests in order: each one either the one before it again (a request
   * that landed although kafkajs gave up on it, sent again) or all after it.
   */
  function expectAtLeastOnceInOrder(expected: number[]) {
    const last = new Map<number, { ids: number[]; max: number }>();
    for (const { topic, messages } of kafka.sends) {
      if (topic !== 't') continue;
      const partition = messages[0].partition!;
      expect(messages.every((m) => m.partition === partition)).toBe(true);
      const ids = messages.map((m) => Number(String(m.key)));
      expect(ids).toEqual(sorted(ids));
      const before = last.get(partition) ?? { ids: [], max: 0 };
      const again = ids.length === before.ids.length && ids.every((id, i) => id === before.ids[i]);
      if (!again && ids[0] <= before.max) {
        expect.fail(`partition ${partition} took ids ${ids[0]}..${ids.at(-1)} after ${before.ids[0]}..${before.max}`);
      }
      last.set(partition, { ids, max: Math.max(before.max, ids.at(-1)!) });
    }
    expect(sorted([...new Set(sentIds())])).toEqual(expected);
  }

  const stallWarning =
    /^no acknowledgement from Kafka for \d+ s: still retrying \(is the broker up\? `npm run platform:status`\) \(kafkajs's log: /;

  it('a broker frozen longer than kafkajs waits, then back: each request goes again until it lands, in order; the run completes', async () => {
    const file = dataset(3000);
    freezeAt(500, 600, thaw);
    const summary = await produce(options(file, quick));
    expect(summary).toMatchObject({ read: 3000, sent: 3000, rejected: 0, stopped: false, complete: true });
    expectAtLeastOnceInOrder(range(1, 3000));
    // Some requests kafkajs gave up on had landed: sent again, they landed twice.
    expect(kafka.timedOut).toBeGreaterThan(4);
    expect(sentIds().length).toBeGreaterThan(3000);
    expect(lines.filter((l) => stallWarning.test(l)).length).toBeGreaterThan(0);
    const text = fs.readFileSync(logFile(), 'utf8');
    expect(text).toMatch(
      /sending \d+ messages to t again in \d+ ms: KafkaJSNonRetriableError: Timeout while acquiring lock \(3 waiting locks\)$/m,
    );
    expect(text).toMatch(
      /sending \d+ messages to t again in \d+ ms: KafkaJSNumberOfRetriesExceeded: Request Produce\(key: 0, version: 7\) timed out$/m,
    );
    expect(loadCheckpoint(checkpointFile(runDir(), file, 't'))).toMatchObject({ nextRow: 3000, complete: true });
    expect(kafka.producers).toHaveLength(1);
  });

  it("Kafka lost the producer's sequence after the outage: a new producer sends the requests pending, in order", async () => {
    const file = dataset(3000);
    freezeAt(500, 300, () => {
      kafka.lostBelow = 1;
      // The new producer's first connect fails as a broker still out of reach does.
      kafka.connectFailures = 1;
      thaw();
    });
    const summary = await produce(options(file, quick));
    expect(summary).toMatchObject({ sent: 3000, stopped: false, complete: true });
    expectAtLeastOnceInOrder(range(1, 3000));
    expect(kafka.producers).toEqual([
      { connected: true, disconnected: true },
      { connected: false, disconnected: true },
      { connected: true, disconnected: true },
    ]);
    expect(kafka.sends.some((s) => s.producer === 2)).toBe(true);
    expect(lines).toContain(
      "Kafka lost the producer's sequence (The broker received an out of order sequence number): a new producer sends the requests still unacknowledged (a few rows may arrive twice; the sink keeps one per id)",
    );
  });

  it('a stop while the broker is frozen: ends within the stop wait, checkpointed at the last chunk acknowledged, without waiting on a disconnect', async () => {
    const file = dataset(3000);
    const controller = new AbortController();
    let stoppedAt = 0;
    freezeAt(500, 200, () => {
      stoppedAt = performance.now();
      controller.abort();
    });
    // Requests hang (far beyond the stop wait) as they do on a frozen broker.
    const summary = await produce(options(file, { ...quick, requestTimeout: 60_000, signal: controller.signal }));
    expect(performance.now() - stoppedAt).toBeLessThan(1000);
    expect(summary).toMatchObject({ stopped: true, complete: false });
    // The checkpoint is at the end of the chunks (250 rows) that landed, all before it.
    const landed = new Set(sentIds());
    let acknowledged = 0;
    while (range(acknowledged + 1, acknowledged + 250).every((id) => landed.has(id))) acknowledged += 250;
    expect(acknowledged).toBeGreaterThanOrEqual(250);
    expect(acknowledged).toBeLessThan(3000);
    expect(summary.sent).toBe(acknowledged);
    expect(loadCheckpoint(checkpointFile(runDir(), file, 't'))).toMatchObject({ nextRow: acknowledged, complete: false });
    // The frozen broker never answered the disconnect: the stop did not wait for it.
    expect(kafka.producers[0].disconnected).toBe(false);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // Back, the next run resumes there.
    thaw();
    const from = kafka.sends.length;
    expect(await produce(options(file, quick))).toMatchObject({ startRow: acknowledged, sent: 3000 - acknowledged, complete: true });
    expect(sorted([...new Set(sentIds(from))])).toEqual(range(acknowledged + 1, 3000));
  });

  it.each([
    ['a message too large', () => protocol.createErrorFromCode(10)],
    [
      'the topic deleted (after kafkajs retried)',
      () => build('KafkaJSNumberOfRetriesExceeded', protocol.createErrorFromCode(3), { retryCount: 30, retryTime: 10_000 }),
    ],
    ['records the broker finds invalid', () => protocol.createErrorFromCode(87)],
    [
      'the producer disconnecting',
      () => build('KafkaJSNonRetriableError', "The producer is disconnecting; therefore, it can't safely accept messages anymore"),
    ],
  ])('a refusal (%s) ends the run at once, in one line: no request is sent again', async (_what, refusal) => {
    const file = dataset(1000);
    const refused: number[] = [];
    kafka.refuse = (_topic, messages) => {
      if (sentIds().length < 500) return undefined;
      refused.push(Number(String(messages[0].key)));
      return refusal();
    };
    const err = await errorOf(produce(options(file, { ...quick, resendPauseMs: [60_000, 60_000] })));
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toBe(
      `Kafka refused rows for t (${refusal().message}); 500 rows are checkpointed: fix what it says and run again to resume (kafkajs's log: ${logFile()})`,
    );
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused).size).toBe(refused.length);
    expect(lines.filter((l) => stallWarning.test(l))).toEqual([]);
  });
});
