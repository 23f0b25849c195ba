// One lane per partition: a chain of sends in which a partition's messages
// leave in order, one request after the other, while the lanes of the other
// partitions send at the same time. Rejected rows have a lane of their own.
// Kafka stays outside: the lanes are given the functions that send.
import type { Message } from 'kafkajs';

export type Send = (messages: Message[]) => Promise<unknown>;

export class Lanes {
  private readonly lanes: Promise<unknown>[];
  private rejectedLane: Promise<unknown> = Promise.resolve();
  private readonly batchMessages: number;
  private readonly send: Send;
  private readonly sendRejected: Send;

  /**
   * @param batchMessages most messages per request on a partition's lane
   * @param send one request to the topic (messages already carry their partition)
   * @param sendRejected one request to the rejected topic (a chunk's rejected rows)
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
      this.rejectedLane = this.rejectedLane.then(() => this.sendRejected(rejected));
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
