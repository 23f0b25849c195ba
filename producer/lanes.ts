// One lane per partition: a chain of sends in which a partition's messages
// leave in order, one request after the other, while the lanes of the other
// partitions send at the same time. Rejected rows have a lane of their own.
// Kafka stays outside: the lanes are given the functions that send.
import type { Message } from 'kafkajs';

export type Send = (messages: Message[]) => Promise<unknown>;

/**
 * Most bytes of rejected messages in one request: the rejected topic has one
 * partition, so a request is one record batch, which Kafka refuses above
 * message.max.bytes (about 1 MB). A rejection is at most about 270 KB.
 */
export const MAX_REJECTED_REQUEST_BYTES = 512 * 1024;

const sizeOf = (m: Message) =>
  byteLength(m.value) +
  byteLength(m.key) +
  Object.entries(m.headers ?? {}).reduce(
    (sum, [k, v]) => sum + k.length + (Array.isArray(v) ? v : [v]).reduce((s, x) => s + byteLength(x), 0),
    0,
  );

function byteLength(value: unknown): number {
  if (value == null) return 0;
  if (Buffer.isBuffer(value)) return value.length;
  return Buffer.byteLength(String(value));
}

/** Messages in runs of at most maxBytes (a larger message alone), in order. */
export function bySize(messages: Message[], maxBytes: number): Message[][] {
  const out: Message[][] = [];
  let run: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = sizeOf(m);
    if (run.length > 0 && bytes + size > maxBytes) {
      out.push(run);
      run = [];
      bytes = 0;
    }
    run.push(m);
    bytes += size;
  }
  if (run.length > 0) out.push(run);
  return out;
}

export class Lanes {
  private readonly lanes: Promise<unknown>[];
  private rejectedLane: Promise<unknown> = Promise.resolve();
  private readonly batchMessages: number;
  private readonly send: Send;
  private readonly sendRejected: Send;

  /**
   * @param batchMessages most messages per request on a partition's lane
   * @param send one request to the topic (messages already carry their partition)
   * @param sendRejected one request to the rejected topic (a chunk's rejected rows, up to MAX_REJECTED_REQUEST_BYTES)
   */
  constructor(partitions: number, batchMessages: number, send: Send, sendRejected: Send) {
    this.lanes = Array.from({ length: partitions }, () => Promise.resolve());
    this.batchMessages = batchMessages;
    this.send = send;
    this.sendRejected = sendRejected;
  }

  /**
   * Queues a chunk's messages behind the ones already on their lanes.
   * Settles when all of them are sent; fails with the first send that fails
   * (a failed lane fails every chunk queued on it afterwards).
   */
  enqueue(perLane: Message[][], rejected: Message[]): Promise<unknown[]> {
    const sends: Promise<unknown>[] = [];
    perLane.forEach((messages, partition) => {
      if (messages.length === 0) return;
      this.lanes[partition] = this.lanes[partition].then(this.sendLane(messages));
      sends.push(this.lanes[partition]);
    });
    if (rejected.length > 0) {
      this.rejectedLane = this.rejectedLane.then(async () => {
        for (const request of bySize(rejected, MAX_REJECTED_REQUEST_BYTES)) await this.sendRejected(request);
      });
      sends.push(this.rejectedLane);
    }
    return Promise.all(sends);
  }

  private sendLane(messages: Message[]) {
    return async () => {
      for (let i = 0; i < messages.length; i += this.batchMessages) {
        await this.send(messages.slice(i, i + this.batchMessages));
      }
    };
  }
}
