import type { Redis } from 'ioredis';
import type { Logger } from './logger.js';

/** What the outbox relay publishes for an `event` row. */
export interface PublishedEvent<T = unknown> {
  name: string;
  key: string;
  payload: T;
}

/**
 * Redis pub/sub for one process: one subscriber connection, channels
 * subscribed while someone listens and unsubscribed when the last listener
 * leaves. Events published by any replica reach listeners in every replica.
 */
export class RedisEvents {
  private readonly listeners = new Map<string, Set<(event: PublishedEvent) => void>>();
  private readonly subscribed = new Map<string, Promise<unknown>>();

  constructor(
    private readonly subscriber: Redis,
    private readonly log: Logger,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      const set = this.listeners.get(channel);
      if (!set) return;
      let event: PublishedEvent;
      try {
        event = JSON.parse(message) as PublishedEvent;
      } catch {
        this.log.warn({ channel }, 'ignored a malformed event');
        return;
      }
      for (const listener of set) listener(event);
    });
  }

  /** Listeners registered now, over all channels. */
  get listenerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  /** Resolves once Redis confirmed the subscription, so no event published afterwards is missed. */
  async listen(channel: string, listener: (event: PublishedEvent) => void): Promise<() => void> {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.subscribed.set(channel, this.subscriber.subscribe(channel));
    }
    set.add(listener);
    // Everyone waits for the same SUBSCRIBE, including listeners that joined while it was in flight.
    await this.subscribed.get(channel);
    return () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0) return;
      this.listeners.delete(channel);
      this.subscribed.delete(channel);
      this.subscriber.unsubscribe(channel).catch((error: unknown) => this.log.warn({ err: error, channel }, 'unsubscribe failed'));
    };
  }

  close(): void {
    this.listeners.clear();
    this.subscriber.disconnect();
  }
}
