// The window of chunks in flight and what Kafka has acknowledged of them.
// Chunks are settled oldest first, so `nextRow` only ever names a row whose
// predecessors are all acknowledged: that is what the checkpoint may say.
// Kafka stays outside: a chunk is a promise of its sends.

export interface InFlightChunk {
  /** Settles when every message of the chunk is acknowledged. */
  done: Promise<unknown>;
  /** The row after the chunk's last one. */
  nextRow: number;
  /** Messages sent to the topic and to the rejected topic. */
  sent: number;
  rejected: number;
}

export class Acks {
  /** Every row before this one is acknowledged. */
  nextRow: number;
  /** Acknowledged messages, on the topic and on the rejected topic. */
  sent = 0;
  rejected = 0;
  /** When the last chunk was acknowledged (or the window opened), by `now`. */
  lastAckAt: number;
  private readonly queue: InFlightChunk[] = [];
  private readonly onAck: () => void;
  private readonly now: () => number;

  /**
   * @param startRow the run's first row
   * @param onAck called after each chunk is acknowledged, the counts updated
   * @param now a clock in ms
   */
  constructor(startRow: number, onAck: () => void, now: () => number = () => performance.now()) {
    this.nextRow = startRow;
    this.onAck = onAck;
    this.now = now;
    this.lastAckAt = now();
  }

  /** Chunks sent and not yet acknowledged. */
  get inFlight(): number {
    return this.queue.length;
  }

  push(chunk: InFlightChunk) {
    // A failure surfaces where the oldest chunk is awaited; the chunks after
    // it must not crash the process as unhandled rejections meanwhile.
    chunk.done.catch(() => {});
    this.queue.push(chunk);
  }

  /**
   * Waits for the oldest chunks until at most `max` are in flight. A chunk
   * that failed throws here, and leaves the counts at the chunk before it.
   */
  async settle(max: number) {
    while (this.queue.length > max) {
      const chunk = this.queue.shift()!;
      await chunk.done;
      this.nextRow = chunk.nextRow;
      this.sent += chunk.sent;
      this.rejected += chunk.rejected;
      this.lastAckAt = this.now();
      this.onAck();
    }
  }

  /** How long Kafka has acknowledged nothing while chunks wait: 0 when none does. */
  silentForMs(now: number): number {
    return this.queue.length > 0 ? now - this.lastAckAt : 0;
  }
}
