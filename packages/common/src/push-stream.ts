/**
 * An async iterator fed by callbacks: what the graphql-ws server reads from.
 * `return()` (the client went away) runs `onClose` once, so upstream resources
 * are released; `end()` lets buffered values drain first.
 */
export class PushStream<T> implements AsyncIterableIterator<T> {
  private readonly buffer: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private finished = false;
  private closed = false;

  constructor(
    private readonly onClose: () => void,
    private readonly maxBuffered = 1_000,
  ) {}

  /** Adds a value; returns false when the consumer is too far behind and the stream was ended. */
  push(value: T): boolean {
    if (this.finished) return false;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value, done: false });
      return true;
    }
    if (this.buffer.length >= this.maxBuffered) {
      this.end();
      return false;
    }
    this.buffer.push(value);
    return true;
  }

  /** No more values; those buffered are still delivered. */
  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.close();
    if (this.waiting && this.buffer.length === 0) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    const value = this.buffer.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.buffer.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }
}
