import { getEventListeners } from 'node:events';
import kafkajs from 'kafkajs';
import type { Message, ProducerRecord, RecordMetadata } from 'kafkajs';
import protocol from 'kafkajs/src/protocol/error.js';
import { describe, expect, it } from 'vitest';
import { Resender, SendRefused, SendStopped, verdictOn } from './resend.js';
import type { ResendOptions, Sender } from './resend.js';

/** A kafkajs error class, built as kafkajs builds it (its types leave out some constructors' arguments). */
const build = (name: string, ...args: unknown[]) =>
  new (kafkajs as unknown as Record<string, new (...a: unknown[]) => Error>)[name](...args);
/** What kafkajs's retrier rejects with once its retries are used up. */
const retriesExceeded = (cause: Error) => build('KafkaJSNumberOfRetriesExceeded', cause, { retryCount: 30, retryTime: 10_000 });
/** What kafkajs's retrier rejects with for a failure it does not retry. */
const gaveUp = (cause: Error) => build('KafkaJSNonRetriableError', cause, { cause });
const { createErrorFromCode } = protocol;

describe('verdictOn: what to do about a failed send, from kafkajs errors', () => {
  const lock = () => build('KafkaJSLockTimeout', 'Timeout while acquiring lock (3 waiting locks)');
  it.each([
    ['a lock timeout (a frozen broker holds the lock), as the retrier passes it on', gaveUp(lock()), 'again'],
    ['a lock timeout', lock(), 'again'],
    [
      'retries used up on request timeouts',
      retriesExceeded(build('KafkaJSRequestTimeoutError', 'Request Produce(key: 0, version: 7) timed out')),
      'again',
    ],
    ['retries used up on connection errors', retriesExceeded(build('KafkaJSConnectionError', 'Connection timeout')), 'again'],
    ['retries used up on a leader change', retriesExceeded(createErrorFromCode(6)), 'again'],
    ['retries used up on the broker timing out', retriesExceeded(createErrorFromCode(7)), 'again'],
    ['retries used up on too few replicas', retriesExceeded(createErrorFromCode(19)), 'again'],
    ['a closed connection', build('KafkaJSConnectionClosedError', 'Closed connection', { host: 'h', port: 1 }), 'again'],
    ['no broker available', build('KafkaJSNoBrokerAvailableError'), 'again'],
    ['metadata not loaded', build('KafkaJSMetadataNotLoaded', 'Producing to topic without metadata'), 'again'],
    ['the producer disconnected (a new one took over)', build('KafkaJSError', 'The producer is disconnected'), 'again'],
    ['a message too large', createErrorFromCode(10), 'refused'],
    ['a batch too large', createErrorFromCode(18), 'refused'],
    ['no authorization for the topic', createErrorFromCode(29), 'refused'],
    ['the topic gone, after kafkajs retried', retriesExceeded(createErrorFromCode(3)), 'refused'],
    ['a corrupt batch, after kafkajs retried', retriesExceeded(createErrorFromCode(2)), 'refused'],
    ['a record the broker finds invalid', createErrorFromCode(87), 'refused'],
    [
      'the producer disconnecting',
      build('KafkaJSNonRetriableError', "The producer is disconnecting; therefore, it can't safely accept messages anymore"),
      'refused',
    ],
    ['failed authentication', build('KafkaJSSASLAuthenticationError', 'SASL PLAIN authentication failed'), 'refused'],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'length')"), 'refused'],
    ['an error not from kafkajs', new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), 'refused'],
    ['not an error', 'oops', 'refused'],
    ['an out-of-order sequence', createErrorFromCode(45), 'new producer'],
    ['a duplicate sequence', createErrorFromCode(46), 'new producer'],
    ['an old producer epoch', createErrorFromCode(47), 'new producer'],
    ['an unknown producer id', createErrorFromCode(59), 'new producer'],
    ['an out-of-order sequence, wrapped', gaveUp(createErrorFromCode(45)), 'new producer'],
  ])('%s: %s', (_what, err, verdict) => {
    expect(verdictOn(err)).toBe(verdict);
  });
});

const record = (topic = 't', n = 3): ProducerRecord => ({
  topic,
  acks: -1,
  messages: Array.from({ length: n }, (_, i): Message => ({ key: String(i), value: 'v', partition: 0 })),
});

/** A producer whose sends fail with `failures` in turn, then succeed; it records each attempt and when. */
function producer(failures: (Error | 'hang')[] = []) {
  const attempts: { record: ProducerRecord; at: number }[] = [];
  const sender: Sender = {
    send: async (r) => {
      attempts.push({ record: r, at: performance.now() });
      const failure = failures.shift();
      if (failure === 'hang') return new Promise<RecordMetadata[]>(() => {});
      if (failure) throw failure;
      return [];
    },
  };
  return { attempts, sender };
}

const resender = (sender: Sender, over: Partial<ResendOptions> = {}) =>
  new Resender({ producer: sender, firstPauseMs: 5, maxPauseMs: 20, stopWaitMs: 50, ...over });
const errorOf = (promise: Promise<unknown>) => promise.then(() => undefined).catch((e: Error) => e);

describe('Resender', () => {
  it('sends a request again after failures that pass, with pauses growing to the ceiling, until it lands', async () => {
    const timeout = retriesExceeded(build('KafkaJSRequestTimeoutError', 'Request Produce(key: 0, version: 7) timed out'));
    const { attempts, sender } = producer([gaveUp(build('KafkaJSLockTimeout', 'lock')), timeout, timeout, timeout, timeout]);
    const notes: string[] = [];
    const r = record();
    await expect(resender(sender, { note: (l) => notes.push(l) }).send(r)).resolves.toEqual([]);
    expect(attempts).toHaveLength(6);
    expect(attempts.every((a) => a.record === r)).toBe(true);
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i].at);
    // Timers may fire a little early by performance.now(): a millisecond of slack.
    expect(gaps.map((gap, i) => gap >= [5, 10, 20, 20, 20][i] - 1)).toEqual([true, true, true, true, true]);
    expect(notes[0]).toBe('sending 3 messages to t again in 5 ms: KafkaJSNonRetriableError: lock');
    expect(notes.at(-1)).toBe(
      'sending 3 messages to t again in 20 ms: KafkaJSNumberOfRetriesExceeded: Request Produce(key: 0, version: 7) timed out',
    );
  });

  it("fails at once with Kafka's refusal, naming the topic", async () => {
    const tooLarge = createErrorFromCode(10);
    const { attempts, sender } = producer([tooLarge]);
    const err = await errorOf(resender(sender).send(record('t.rejected')));
    expect(err).toBeInstanceOf(SendRefused);
    expect(err).toMatchObject({ topic: 't.rejected', message: tooLarge.message, cause: tooLarge });
    expect(attempts).toHaveLength(1);
  });

  it('takes one new producer when Kafka lost the sequence, however many requests found out, and sends them with it', async () => {
    const old = producer([createErrorFromCode(45), createErrorFromCode(45)]);
    const fresh = producer();
    const lines: string[] = [];
    let renewals = 0;
    const connectFailure = retriesExceeded(build('KafkaJSConnectionError', 'Connection timeout'));
    const r = resender(old.sender, {
      log: (l) => lines.push(l),
      renew: async () => {
        renewals++;
        // The first connect fails as a broker still out of reach does: tried again.
        if (renewals === 1) throw connectFailure;
        return fresh.sender;
      },
    });
    const [a, b] = [record('t', 1), record('t', 2)];
    await Promise.all([r.send(a), r.send(b)]);
    expect(old.attempts.map((x) => x.record)).toEqual([a, b]);
    expect(fresh.attempts.map((x) => x.record).sort((x, y) => x.messages.length - y.messages.length)).toEqual([a, b]);
    expect(renewals).toBe(2);
    expect(lines).toEqual([
      "Kafka lost the producer's sequence (The broker received an out of order sequence number): a new producer sends the requests still unacknowledged (a few rows may arrive twice; the sink keeps one per id)",
    ]);
    // Later sends go to the new producer only.
    await r.send(record());
    expect(old.attempts).toHaveLength(2);
    expect(fresh.attempts).toHaveLength(3);
  });

  it('refuses a lost sequence when it cannot take a new producer', async () => {
    const { sender } = producer([createErrorFromCode(47)]);
    expect(await errorOf(resender(sender).send(record()))).toBeInstanceOf(SendRefused);
  });

  it('a stop ends a pause at once, gives a request out stopWaitMs to land, and sends nothing again', async () => {
    const controller = new AbortController();
    const lock = gaveUp(build('KafkaJSLockTimeout', 'lock'));
    const pausing = producer([lock]);
    const hanging = producer(['hang']);
    const landing = producer();
    const slowLanding: Sender = {
      send: (r) => new Promise((resolve) => setTimeout(() => resolve(landing.sender.send(r)), 20)),
    };
    const options = { signal: controller.signal, firstPauseMs: 60_000, stopWaitMs: 100 };
    const [p, h, l] = [pausing.sender, hanging.sender, slowLanding].map((s) => resender(s, options));
    const sends = [p.send(record()), h.send(record()), l.send(record())].map(errorOf);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const stoppedAt = performance.now();
    controller.abort();
    const [paused, hung, landed] = await Promise.all(sends.map((s) => s.then((err) => ({ err, ms: performance.now() - stoppedAt }))));
    expect(paused.err).toBeInstanceOf(SendStopped);
    expect(paused.ms).toBeLessThan(50);
    expect(hung.err).toBeInstanceOf(SendStopped);
    expect(hung.ms).toBeGreaterThanOrEqual(99);
    expect(hung.ms).toBeLessThan(1000);
    expect(landed.err).toBeUndefined();
    expect(landing.attempts).toHaveLength(1);
    expect(pausing.attempts).toHaveLength(1);
    // The wait is over: nothing goes out any more.
    expect(await errorOf(l.send(record()))).toBeInstanceOf(SendStopped);
    expect(landing.attempts).toHaveLength(1);
    for (const r of [p, h, l]) r.close();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('close() ends the sends still retrying', async () => {
    const lock = gaveUp(build('KafkaJSLockTimeout', 'lock'));
    const { attempts, sender } = producer([lock, lock, lock]);
    const r = resender(sender, { firstPauseMs: 60_000, maxPauseMs: 60_000 });
    const send = errorOf(r.send(record()));
    await new Promise((resolve) => setTimeout(resolve, 5));
    r.close();
    expect(await send).toBeInstanceOf(SendStopped);
    expect(attempts).toHaveLength(1);
  });
});
