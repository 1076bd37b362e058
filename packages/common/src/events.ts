import type { Redis } from 'ioredis';
import type { Logger } from './logger.js';

/** What the outbox relay publishes for an `event` row. */
export interface PublishedEvent<T = unknown> {
  name: string;
  key: string;
  payload: T;
}

export type EventListener = (event: PublishedEvent) => void;

/** A listener that wants only the events whose payload has `value` in `field` (e.g. one order's events). */
export interface EventFilter {
  field: string;
  value: string;
}

/** The listeners of one channel: those that take every event, and those indexed by a payload field's value. */
class ChannelListeners {
  readonly all = new Set<EventListener>();
  /** Field -> value -> listeners. */
  readonly byField = new Map<string, Map<string, Set<EventListener>>>();
  size = 0;

  add(listener: EventListener, filter: EventFilter | undefined): void {
    const set = this.setOf(filter, true)!;
    if (set.has(listener)) return;
    set.add(listener);
    this.size++;
  }

  /** Returns whether the listener was there. */
  delete(listener: EventListener, filter: EventFilter | undefined): boolean {
    const set = this.setOf(filter, false);
    if (!set?.delete(listener)) return false;
    this.size--;
    if (filter && set.size === 0) {
      const byValue = this.byField.get(filter.field)!;
      byValue.delete(filter.value);
      if (byValue.size === 0) this.byField.delete(filter.field);
    }
    return true;
  }

  dispatch(event: PublishedEvent): void {
    for (const listener of this.all) listener(event);
    if (this.byField.size === 0) return;
    const payload = event.payload;
    if (typeof payload !== 'object' || payload === null) return;
    for (const [field, byValue] of this.byField) {
      const value = (payload as Record<string, unknown>)[field];
      if (typeof value !== 'string') continue;
      const listeners = byValue.get(value);
      if (listeners) for (const listener of listeners) listener(event);
    }
  }

  private setOf(filter: EventFilter | undefined, create: boolean): Set<EventListener> | undefined {
    if (!filter) return this.all;
    let byValue = this.byField.get(filter.field);
    if (!byValue) {
      if (!create) return undefined;
      byValue = new Map();
      this.byField.set(filter.field, byValue);
    }
    let set = byValue.get(filter.value);
    if (!set && create) {
      set = new Set();
      byValue.set(filter.value, set);
    }
    return set;
  }
}

/**
 * Redis pub/sub for one process: one subscriber connection, channels
 * subscribed while someone listens and unsubscribed when the last listener
 * leaves. Events published by any replica reach listeners in every replica.
 * A listener may name the payload field value it follows (one order's events
 * among all orders'): an event then reaches only its listeners, so the cost of
 * an event does not grow with the number of listeners on the channel.
 */
export class RedisEvents {
  private readonly listeners = new Map<string, ChannelListeners>();
  private readonly subscribed = new Map<string, Promise<unknown>>();

  constructor(
    private readonly subscriber: Redis,
    private readonly log: Logger,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      const listeners = this.listeners.get(channel);
      if (!listeners) return;
      let event: PublishedEvent;
      try {
        event = JSON.parse(message) as PublishedEvent;
      } catch {
        this.log.warn({ channel }, 'ignored a malformed event');
        return;
      }
      listeners.dispatch(event);
    });
  }

  /** Listeners registered now, over all channels. */
  get listenerCount(): number {
    let n = 0;
    for (const listeners of this.listeners.values()) n += listeners.size;
    return n;
  }

  /**
   * Calls `listener` with every event of `channel`, or with `filter` only those whose payload's `filter.field` is
   * `filter.value`. Resolves once Redis confirmed the subscription, so no event published afterwards is missed.
   */
  async listen(channel: string, listener: EventListener, filter?: EventFilter): Promise<() => void> {
    let listeners = this.listeners.get(channel);
    if (!listeners) {
      listeners = new ChannelListeners();
      this.listeners.set(channel, listeners);
      this.subscribed.set(channel, this.subscriber.subscribe(channel));
    }
    listeners.add(listener, filter);
    // Everyone waits for the same SUBSCRIBE, including listeners that joined while it was in flight.
    await this.subscribed.get(channel);
    return () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(listener, filter) || current.size > 0) return;
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
