// Requests that outlast Kafka's outages. kafkajs retries a request for a while
// and then gives up, or fails it at once on a lock it waited for too long
// (a broker frozen or out of reach holds its locks): such a failure passes,
// so the request goes again, after a pause that grows up to a ceiling, for as
// long as it takes. A refusal (a message too large, a topic gone, no
// authorization) fails at once. When Kafka no longer takes the idempotent
// producer's sequence (after a long outage), a new producer takes over and
// the requests still pending go again with it. The caller keeps the order:
// a partition has one request out at a time (lanes.ts), and this sends it
// until it lands.
//
// A request kafkajs gave up on may have landed all the same; sent again it
// lands twice unless the broker recognizes the producer's sequence (the same
// producer, usually). Rare, and harmless downstream (the sink upserts on id).
//
// A stop (the signal) lets the requests out finish for stopWaitMs, and sends
// nothing again: what is still unanswered then fails with SendStopped.
import type { Producer, ProducerRecord, RecordMetadata } from 'kafkajs';

export type Sender = Pick<Producer, 'send'>;

/**
 * What to do about a failed request: send it again (a failure that passes),
 * send it again with a new producer (Kafka lost the producer's sequence), or
 * give up (Kafka refuses it: sending it again changes nothing).
 */
export type Verdict = 'again' | 'new producer' | 'refused';

/**
 * Kafka refusing the producer id or its sequence (kafkajs's sequence out of
 * step with the broker's): a new producer (a new id, sequences from 0) is taken.
 */
const LOST_SEQUENCE = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'DUPLICATE_SEQUENCE_NUMBER',
  'INVALID_PRODUCER_EPOCH',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_ID_MAPPING',
]);

/**
 * Errors kafkajs calls retriable that are refusals here: the topics were
 * created before the run, so a topic still unknown after kafkajs's own
 * retries is gone; a batch the broker found corrupt is corrupt again.
 */
const REFUSED = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'CORRUPT_MESSAGE']);

/** kafkajs errors of a broker slow, frozen, restarting or out of reach. */
const PASSING = new Set([
  'KafkaJSLockTimeout',
  'KafkaJSTimeout',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
]);

/**
 * kafkajs's wrappers: what gave up (its retries used up, or a failure it
 * would not retry), the failure itself in `cause`.
 */
const WRAPPERS = new Set(['KafkaJSNumberOfRetriesExceeded', 'KafkaJSNonRetriableError']);

/**
 * The verdict on a failed send, from kafkajs's error classes (by name, as in
 * kafkajs's src/errors.js), walking down the causes of its wrappers. Anything
 * not from kafkajs (a bug) is refused: it would fail again.
 */
export function verdictOn(err: unknown, depth = 0): Verdict {
  if (!(err instanceof Error) || depth > 8) return 'refused';
  const e = err as Error & { retriable?: unknown; type?: unknown; cause?: unknown };
  if (!e.name.startsWith('KafkaJS')) return 'refused';
  if (typeof e.type === 'string') {
    if (LOST_SEQUENCE.has(e.type)) return 'new producer';
    if (REFUSED.has(e.type)) return 'refused';
  }
  if (PASSING.has(e.name)) return 'again';
  if (WRAPPERS.has(e.name) && e.cause instanceof Error && e.cause !== e) return verdictOn(e.cause, depth + 1);
  // KafkaJSProtocolError by its code, KafkaJSError ('The producer is disconnected')
  // and the rest as kafkajs says; its non-retriable errors without a cause
  // (disconnecting, an invalid message, authentication) are refusals.
  return e.retriable === true ? 'again' : 'refused';
}

/** A request still unanswered when a stop's wait ran out. */
export class SendStopped extends Error {}

/** A request Kafka refused (see verdictOn): its message is Kafka's. */
export class SendRefused extends Error {
  constructor(
    readonly topic: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

export interface ResendOptions {
  producer: Sender;
  /**
   * Connects a new producer in place of the current one (and lets the old one
   * go). Without it, a lost sequence is a refusal.
   */
  renew?: () => Promise<Sender>;
  signal?: AbortSignal;
  /** The first pause before a request goes again, ms; each next one doubles, up to maxPauseMs. */
  firstPauseMs: number;
  maxPauseMs: number;
  /** How long a stop waits for the requests out. */
  stopWaitMs: number;
  /** For the user: a new producer taking over. */
  log?: (line: string) => void;
  /** For kafkajs's log: each request sent again. */
  note?: (line: string) => void;
}

type Fail = (err: Error) => void;

export class Resender {
  private producer: Sender;
  /** Counts the producers: a failure of an older one's request is not the current one's. */
  private generation = 0;
  /** The generation whose sequence Kafka lost. */
  private lost = -1;
  private renewing: Promise<void> | undefined;
  /** Requests out, and pauses, each with the function that fails it. */
  private readonly out = new Set<Fail>();
  private readonly pausing = new Set<Fail>();
  /** The stop's wait ran out (or close()): nothing goes out any more. */
  private over = false;
  private stopTimer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => {
    for (const fail of this.pausing) fail(this.stopped());
    this.stopTimer = setTimeout(() => this.end(), this.opts.stopWaitMs);
  };

  constructor(private readonly opts: ResendOptions) {
    this.producer = opts.producer;
    if (opts.signal?.aborted) this.onAbort();
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Sends `record` until Kafka acknowledges it. Fails with SendRefused when
   * Kafka refuses it, with SendStopped after a stop.
   */
  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    let pause = this.opts.firstPauseMs;
    for (;;) {
      if (this.over) throw this.stopped();
      const generation = this.generation;
      try {
        if (this.lost === generation) await this.guard(this.renew(generation));
        return await this.guard(this.producer.send(record));
      } catch (err) {
        if (err instanceof SendStopped) throw err;
        if (this.over || this.opts.signal?.aborted) throw this.stopped();
        // A new producer took over while this one was out: straight to it.
        if (generation !== this.generation) continue;
        const verdict = verdictOn(err);
        if (verdict === 'refused' || (verdict === 'new producer' && !this.opts.renew)) throw new SendRefused(record.topic, err);
        if (verdict === 'new producer' && this.lost !== generation) {
          this.lost = generation;
          this.opts.log?.(
            `Kafka lost the producer's sequence (${(err as Error).message}): a new producer sends the requests still unacknowledged (a few rows may arrive twice; the sink keeps one per id)`,
          );
        }
        this.opts.note?.(
          `sending ${record.messages.length} messages to ${record.topic} again in ${pause} ms: ${(err as Error).name}: ${(err as Error).message}`,
        );
        await this.pause(pause);
        pause = Math.min(pause * 2, this.opts.maxPauseMs);
      }
    }
  }

  /** Stops listening to the signal; a send still retrying fails with SendStopped. */
  close() {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    clearTimeout(this.stopTimer);
    this.end();
    for (const fail of this.pausing) fail(this.stopped());
  }

  private end() {
    this.over = true;
    for (const fail of this.out) fail(this.stopped());
  }

  private stopped() {
    return new SendStopped('stopped before Kafka acknowledged every request');
  }

  /** One new producer for the requests of `generation`, however many of them ask. */
  private renew(generation: number): Promise<void> {
    if (generation !== this.generation) return Promise.resolve();
    this.renewing ??= this.opts.renew!()
      .then((producer) => {
        this.producer = producer;
        this.generation = generation + 1;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    return this.renewing;
  }

  /** `work`, unless the stop's wait runs out first. */
  private guard<T>(work: Promise<T>): Promise<T> {
    if (!this.opts.signal) return work;
    return new Promise<T>((resolve, reject) => {
      this.out.add(reject);
      work.then(resolve, reject).finally(() => this.out.delete(reject));
    });
  }

  /** Waits `ms`, unless a stop comes first. */
  private pause(ms: number): Promise<void> {
    if (this.over || this.opts.signal?.aborted) return Promise.reject(this.stopped());
    return new Promise<void>((resolve, reject) => {
      const fail: Fail = (err) => {
        clearTimeout(timer);
        this.pausing.delete(fail);
        reject(err);
      };
      const timer = setTimeout(() => {
        this.pausing.delete(fail);
        resolve();
      }, ms);
      this.pausing.add(fail);
    });
  }
}
