import type { ExecutionResult } from 'graphql';
import type { PushStream } from '@shop/common';

/**
 * What a subscriber that joins an upstream subscription already running gets first:
 * - `snapshot`: the field sends the current state first, then each change; the joiner gets the latest event the
 *   upstream sent, resolved again for it (fields of other subgraphs as they are now), then every later event.
 * - `events`: the field sends changes only; the joiner gets every event from the moment it joined.
 */
export type Sharing = 'snapshot' | 'events';

/**
 * Root subscription fields whose identical subscribers (same operation, variables and caller) share one upstream
 * subscription and one resolution of each event. A field not listed here is never shared: a subgraph may keep
 * state per subscription (a counter from 1, a cursor) that a late joiner would miss.
 */
export const SUBSCRIPTION_SHARING: Readonly<Record<string, Sharing>> = {
  orderStatusChanged: 'snapshot',
  orderUpdates: 'events',
};

/** Keys sorted at every level, so `{a, b}` and `{b, a}` name the same variables. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    return `{${Object.keys(object)
      .sort()
      .filter((key) => object[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${stableJson(object[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export interface UpstreamSink<E> {
  next(event: E): void;
  error(cause: unknown): void;
  complete(): void;
}

/**
 * One upstream subscription and the client streams that share it. Each event is resolved once, one after another,
 * and the one result is pushed to every member that was there when the event arrived, so each member sees the
 * events in order. A member too slow to keep up is ended alone. The upstream ends when the last member leaves.
 */
export class SharedSubscription<E> {
  /** Member -> how many events had arrived when it joined (it gets the later ones). */
  private readonly members = new Map<PushStream<ExecutionResult>, number>();
  private received = 0;
  private latest: E | undefined;
  private queue: Promise<void> = Promise.resolve();
  private unsubscribe: () => void = () => undefined;
  private closed = false;

  constructor(
    private readonly options: {
      sharing: Sharing | undefined;
      /** Resolves one upstream event into what clients receive. */
      resolve: (event: E) => Promise<ExecutionResult>;
      /** Turns the upstream's failure into the last result members receive. */
      failure: (cause: unknown) => ExecutionResult;
      /** Called once, when the group takes no more members (last one left, or the upstream ended). */
      onClosed: () => void;
      onSlowMember: (stream: PushStream<ExecutionResult>) => void;
      onResolveFailed: (cause: unknown) => void;
    },
  ) {}

  get size(): number {
    return this.members.size;
  }

  /** Opens the upstream subscription; `subscribe` returns its unsubscribe. */
  start(subscribe: (sink: UpstreamSink<E>) => () => void): void {
    this.unsubscribe = subscribe({
      next: (event) => this.onEvent(event),
      error: (cause) => {
        this.close();
        this.enqueue(async () => {
          const result = this.options.failure(cause);
          for (const stream of [...this.members.keys()]) {
            stream.push(result);
            stream.end();
          }
        });
      },
      complete: () => {
        this.close();
        this.enqueue(async () => {
          for (const stream of [...this.members.keys()]) stream.end();
        });
      },
    });
  }

  join(stream: PushStream<ExecutionResult>): void {
    const joinedAt = this.received;
    this.members.set(stream, joinedAt);
    const latest = this.latest;
    if (this.options.sharing !== 'snapshot' || joinedAt === 0 || latest === undefined) return;
    // Queued behind the events already received, ahead of those still to come: this member's first message.
    this.enqueue(async () => {
      if (!this.members.has(stream)) return;
      const result = await this.options.resolve(latest);
      if (this.members.has(stream)) this.push(stream, result);
    });
  }

  leave(stream: PushStream<ExecutionResult>): void {
    if (!this.members.delete(stream) || this.members.size > 0) return;
    this.close();
    this.unsubscribe();
  }

  private onEvent(event: E): void {
    const seq = ++this.received;
    this.latest = event;
    this.enqueue(async () => {
      if (this.members.size === 0) return;
      const result = await this.options.resolve(event);
      for (const [stream, joinedAt] of this.members) if (joinedAt < seq) this.push(stream, result);
    });
  }

  private push(stream: PushStream<ExecutionResult>, result: ExecutionResult): void {
    if (!stream.push(result)) this.options.onSlowMember(stream);
  }

  /** Runs after everything queued before it; a failure ends the members rather than stalling the queue. */
  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue.then(work).catch((cause: unknown) => {
      this.options.onResolveFailed(cause);
      const result = this.options.failure(cause);
      for (const stream of [...this.members.keys()]) {
        stream.push(result);
        stream.end();
      }
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.options.onClosed();
  }
}
