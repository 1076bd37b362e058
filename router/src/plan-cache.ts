import { print, type DocumentNode } from 'graphql';

/** One operation's cache key: its name and the text the client sent (the printed document when the parser kept none). */
export function operationKey(document: DocumentNode, operationName: string | undefined): string {
  return `${operationName ?? ''}\n${document.loc?.source.body ?? print(document)}`;
}

/**
 * Query plans (with their operation context) of subscription operations, by
 * operation text, for one version of the supergraph. Every client following an
 * order sends the same operation; planning it once instead of per subscription
 * saves most of the CPU of opening one, and the memory of a plan per subscriber.
 * Least recently used entries go first once `max` are held.
 */
export class PlanCache<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly max = 500) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached value for this operation, or what `build` returns (cached when it does not throw). */
  get(document: DocumentNode, operationName: string | undefined, build: () => T): T {
    return this.getByKey(operationKey(document, operationName), build);
  }

  /** The cached value under `key` (an operation key with anything else the value depends on), or what `build` returns. */
  getByKey(key: string, build: () => T): T {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const value = build();
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }
}

const caches = new WeakMap<object, PlanCache<unknown>>();

/** The plan cache of one planning state (one supergraph version); a new supergraph starts empty. */
export function planCacheOf<T>(planning: object): PlanCache<T> {
  let cache = caches.get(planning);
  if (!cache) {
    cache = new PlanCache<unknown>();
    caches.set(planning, cache);
  }
  return cache as PlanCache<T>;
}
