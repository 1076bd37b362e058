import type { Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { OutageLog } from './outage.js';

/**
 * Entity generations: the contract between the subgraphs and the router's entity cache.
 *
 * Every committed change of a subgraph's fields of an entity increments that entity's generation in that subgraph, a
 * counter in Redis under `<prefix>:entity-gen:<subgraph>:<Type>:<id>`, before the request or job that made the change
 * answers. (A new order changes the orders subgraph's `User.orders`, not the users subgraph's `User.name`; fields a
 * subgraph computes from another's, through `@requires`, are keyed by those in the representation.) The router keeps
 * `_entities` answers of a subgraph in memory together with the generations they were read at, and reads the
 * current generations (one MGET) before it uses them: a change the writer has answered for is never served stale.
 * A subgraph says that it keeps this contract with the `x-shop-entity-cache` header on its GraphQL answers; the
 * router caches nothing of a subgraph that does not send it.
 */
export const ENTITY_CACHE_HEADER = 'x-shop-entity-cache';

/** An entity by its `__typename` and `id`. */
export interface EntityRef {
  typename: string;
  id: string;
}

/**
 * The Redis key of an entity's generation in one subgraph. Writers and the router both name keys through here; ids
 * are taken in lower case, so an id spelled in another case (a UUID in capitals, say) still names the generation the
 * writer increments.
 */
export function entityGenerationKey(prefix: string, subgraph: string, typename: string, id: string): string {
  return `${prefix}:entity-gen:${subgraph}:${typename}:${id.toLowerCase()}`;
}

/**
 * Increments the generations, in its subgraph, of the entities a committed change touched. Call it after the commit and before the
 * answer (or the job's completion), so a client that saw the answer reads the change. A Redis failure is logged and
 * not thrown: the change is committed, and cached copies expire after the router's ENTITY_CACHE_TTL_MS.
 */
export class EntityInvalidator {
  /** Keys waiting for the next round trip, and the calls that wait for them. */
  private next: { keys: Set<string>; waiters: (() => void)[] } | undefined;
  private sending = false;
  private readonly outage: OutageLog;

  constructor(
    /** The subgraph whose fields the changes are of, as the router names it (supergraph.yaml). */
    private readonly subgraph: string,
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    log: Logger,
  ) {
    this.outage = new OutageLog(log, 'entity cache invalidation (cached copies expire with their TTL meanwhile)');
  }

  /** Whether changes are announced at all (a subgraph without Redis announces none, and says so by no header). */
  get enabled(): boolean {
    return this.redis !== undefined;
  }

  /**
   * Resolves once the entities' generations have grown. Calls made while a round trip is in flight go together in
   * the next one (a key named by several of them grows once: every change it stands for committed before it was
   * sent), so a worker finishing many jobs at once pays a round trip per batch, not per job.
   */
  invalidate(refs: readonly EntityRef[]): Promise<void> {
    if (!this.redis || refs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const batch = (this.next ??= { keys: new Set(), waiters: [] });
      for (const key of this.keysOf(refs)) batch.keys.add(key);
      batch.waiters.push(resolve);
      if (!this.sending) this.send();
    });
  }

  /**
   * Writes the increments on the connection now and does not wait for them. For a BullMQ worker announcing on its own
   * connection: Redis runs one connection's commands in order, so the job's completion, sent on it afterwards, lands
   * after them, without the job waiting a round trip (a worker at concurrency 10 waits on four per job otherwise).
   */
  sendNow(refs: readonly EntityRef[]): void {
    if (!this.redis || refs.length === 0) return;
    void this.increment([...new Set(this.keysOf(refs))]);
  }

  private keysOf(refs: readonly EntityRef[]): string[] {
    return refs.map((r) => entityGenerationKey(this.prefix, this.subgraph, r.typename, r.id));
  }

  private send(): void {
    const batch = this.next;
    if (!batch) return;
    this.next = undefined;
    this.sending = true;
    void this.increment([...batch.keys]).finally(() => {
      this.sending = false;
      for (const resolve of batch.waiters) resolve();
      this.send();
    });
  }

  private async increment(keys: string[]): Promise<void> {
    try {
      const pipeline = this.redis!.pipeline();
      for (const key of keys) pipeline.incr(key);
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
      this.outage.succeeded();
    } catch (error) {
      this.outage.failed(error);
    }
  }
}
