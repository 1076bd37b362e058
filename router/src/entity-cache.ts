import { randomUUID } from 'node:crypto';
import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import type { Redis } from 'ioredis';
import { entityGenerationKey, type Logger } from '@shop/common';
import type { RouterContext } from './context.js';

type ProcessOptions = GraphQLDataSourceProcessOptions<RouterContext>;
type GraphQLErrorLike = NonNullable<GatewayGraphQLResponse['errors']>[number];

export interface EntityCacheConfig {
  /** Off: every `_entities` fetch goes to its subgraph. */
  enabled: boolean;
  /** Longest a cached entity is used, even while its generation holds (a safety net for lost invalidations). */
  ttlMs: number;
  /** Most entities kept; the oldest stored go first. */
  maxEntries: number;
  /** Longest the generation read may take before the fetch goes out uncached. */
  redisTimeoutMs: number;
}

export interface EntityCacheEvents {
  /** Entities answered from memory (hits) or asked of the subgraph (misses), per fetch. */
  looked?(subgraph: string, hits: number, misses: number): void;
}

/** One entity as a subgraph answered it, with what it was read at. */
interface Entry {
  json: string;
  epoch: string;
  generation: string;
  expiresAt: number;
}

/** A representation the cache can file: it names its type and id. */
interface Keyed {
  index: number;
  key: string;
  generationKey: string;
}

/** The answer of a fetch sent to the subgraph, and whether the subgraph keeps the generation contract. */
export interface EntityFetchAnswer {
  response: GatewayGraphQLResponse;
  /** Undefined when the subgraph did not answer (unreachable, refused): nothing is known, nothing changes. */
  announced: boolean | undefined;
}

/** Most scopes remembered; past it, the oldest is forgotten. */
const MAX_SCOPES = 10_000;

/** Whether the client asked for fresh data (`Cache-Control: no-cache`): its fetches go out as with no cache at all. */
function bypassed(options: ProcessOptions): boolean {
  if (!('incomingRequestContext' in options)) return false;
  const header = options.incomingRequestContext.request.http?.headers.get('cache-control');
  return typeof header === 'string' && /no-cache|no-store/i.test(header);
}

function callerOf(options: ProcessOptions): string {
  const identity = 'incomingRequestContext' in options ? options.context.identity : undefined;
  return identity ? `${identity.role}:${identity.sub}` : 'anonymous';
}

function timeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The router's entity cache: `_entities` answers kept in memory per subgraph, operation, caller and representation,
 * each with the generation of its entity (see @shop/common's entity-cache.ts) and the cache epoch it was read at.
 *
 * Before a fetch, the generations of its entities are read from Redis (one MGET); an entity whose stored generation
 * is still current is answered from memory, and only the others are asked of the subgraph (their answers, and the
 * paths of their errors, are put back in place). A subgraph that commits a change increments the generation before it
 * answers, so a read after the change's answer never sees the old entity. The epoch is a random value in Redis: a
 * Redis that restarted empty or was flushed has none (or a new one), so nothing read before counts.
 *
 * Only what a subgraph answered without an error for that entity is kept, and only while the subgraph announces that
 * it keeps the contract (its `x-shop-entity-cache` header): its first answer without the header turns lookups off for
 * it (a fetch answered wholly from memory learns nothing, so entries may serve until their TTL). Callers never share entries: each subgraph still decides
 * what each caller may see. Without Redis, or if it fails, fetches go out as if there were no cache; so do those of
 * a request that asks for fresh data (`Cache-Control: no-cache`), which neither reads nor fills the cache.
 */
export class EntityCache {
  /** Entries by scope number and representation (a scope's full text would make every key several hundred bytes). */
  private readonly entries = new Map<string, Entry>();
  /** Scope (subgraph, caller, operation, other variables) → its number; bounded, as callers are many. */
  private readonly scopes = new Map<string, number>();
  private nextScope = 0;
  /** Subgraphs whose last answer announced the contract; only their entities are looked up. */
  private readonly announcing = new Set<string>();
  private readonly epochKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly config: EntityCacheConfig,
    private readonly log: Logger,
    private readonly events: EntityCacheEvents = {},
    private readonly now: () => number = Date.now,
  ) {
    this.epochKey = `${prefix}:entity-gen:epoch`;
    if (config.enabled) this.startEpoch();
  }

  /** Starts an epoch if Redis has none; another replica may win the race, and its value is the one kept. */
  private startEpoch(): void {
    this.redis.set(this.epochKey, randomUUID(), 'NX').catch(() => undefined);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Answers an `_entities` fetch, from memory where it can; `send` asks the subgraph. */
  async process(subgraph: string, options: ProcessOptions, send: (options: ProcessOptions) => Promise<EntityFetchAnswer>): Promise<GatewayGraphQLResponse> {
    const { request } = options;
    const representations = request.variables?.representations;
    // A subgraph that does not (yet) announce the contract costs no Redis round trip; its first answer that does
    // turns the cache on for it.
    if (!this.config.enabled || !this.announcing.has(subgraph) || !Array.isArray(representations) || representations.length === 0 || bypassed(options)) {
      return this.sendAndNote(subgraph, options, send);
    }
    const scope = this.scopeNumber(subgraph, options);
    const keyed: Keyed[] = [];
    representations.forEach((representation: unknown, index) => {
      const rep = representation as { __typename?: unknown; id?: unknown } | null;
      if (!rep || typeof rep.__typename !== 'string' || (typeof rep.id !== 'string' && typeof rep.id !== 'number')) return;
      keyed.push({ index, key: `${scope}\n${JSON.stringify(rep)}`, generationKey: entityGenerationKey(this.prefix, subgraph, rep.__typename, String(rep.id)) });
    });
    if (keyed.length === 0) return this.sendAndNote(subgraph, options, send);

    let generations: (string | null)[];
    try {
      generations = await timeout(this.redis.mget(this.epochKey, ...keyed.map((k) => k.generationKey)), this.config.redisTimeoutMs);
    } catch (error) {
      options.context.log?.debug({ err: error, subgraph }, 'entity cache skipped: generations unavailable');
      return this.sendAndNote(subgraph, options, send);
    }
    const epoch = generations[0];
    if (!epoch) {
      // A new or emptied Redis: nothing read before counts.
      this.startEpoch();
      return this.sendAndNote(subgraph, options, send);
    }
    const now = this.now();
    const found = new Array<string | undefined>(representations.length).fill(undefined);
    const missing: { keyed: Keyed; generation: string }[] = [];
    keyed.forEach((k, i) => {
      const generation = generations[i + 1] ?? '0';
      const entry = this.entries.get(k.key);
      if (entry && entry.epoch === epoch && entry.generation === generation && entry.expiresAt > now) found[k.index] = entry.json;
      else missing.push({ keyed: k, generation });
    });
    const hits = keyed.length - missing.length;
    this.events.looked?.(subgraph, hits, representations.length - hits);
    if (hits === representations.length) return { data: { _entities: JSON.parse(`[${found.join(',')}]`) as unknown[] } };

    // Ask the subgraph for what memory did not answer, in the fetch's order.
    const asked: number[] = [];
    for (let i = 0; i < representations.length; i++) if (found[i] === undefined) asked.push(i);
    const partial = hits > 0;
    const sent = partial
      ? { ...options, request: { ...request, variables: { ...request.variables, representations: asked.map((i) => representations[i]) } } }
      : options;
    const { response, announced } = await this.sendAndNoteAnswer(subgraph, sent, send);
    const data = response.data as { _entities?: unknown } | null | undefined;
    const entities = data?._entities;
    const fits = Array.isArray(entities) && entities.length === asked.length;
    if (fits && announced) this.store(response, entities, asked, missing, epoch, now);
    if (!partial) return response;
    if (data && !fits) return this.unusable(subgraph, response);
    // Entities from memory stay in place even when the subgraph failed: its errors name only those it was asked for.
    const merged = JSON.parse(`[${found.map((json) => json ?? 'null').join(',')}]`) as unknown[];
    if (fits) asked.forEach((original, j) => (merged[original] = entities[j]));
    const errors = response.errors?.map((e): GraphQLErrorLike => {
      const j = e.path?.[0] === '_entities' ? e.path[1] : undefined;
      return typeof j === 'number' && asked[j] !== undefined ? { ...e, path: ['_entities', asked[j]!, ...e.path!.slice(2)] } : e;
    });
    return {
      ...(response.extensions === undefined ? {} : { extensions: response.extensions }),
      data: { ...data, _entities: merged },
      ...(errors && errors.length > 0 ? { errors } : {}),
    };
  }

  /** Keeps each asked entity that came back without an error of its own (none at all if an error names no entity). */
  private store(
    response: GatewayGraphQLResponse,
    entities: unknown[],
    asked: number[],
    missing: { keyed: Keyed; generation: string }[],
    epoch: string,
    now: number,
  ): void {
    const failed = new Set<number>();
    for (const error of response.errors ?? []) {
      const j = error.path?.[0] === '_entities' ? error.path[1] : undefined;
      if (typeof j !== 'number') return;
      failed.add(j);
    }
    const position = new Map<number, number>();
    asked.forEach((original, j) => position.set(original, j));
    for (const { keyed, generation } of missing) {
      const j = position.get(keyed.index)!;
      const entity = entities[j];
      if (failed.has(j) || entity === null || entity === undefined) continue;
      this.entries.delete(keyed.key);
      this.entries.set(keyed.key, { json: JSON.stringify(entity), epoch, generation, expiresAt: now + this.config.ttlMs });
    }
    // Map order is insertion order: the oldest stored go first.
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.config.maxEntries) break;
      this.entries.delete(key);
    }
  }

  private scopeNumber(subgraph: string, options: ProcessOptions): number {
    const { representations: _, ...others } = options.request.variables ?? {};
    const rest = Object.keys(others).length === 0 ? '' : JSON.stringify(others);
    const scope = `${subgraph}\n${callerOf(options)}\n${options.request.operationName ?? ''}\n${rest}\n${options.request.query ?? ''}`;
    let number = this.scopes.get(scope);
    if (number === undefined) {
      // The oldest scope is forgotten; numbers are never reused, so its entries can no longer answer (they go as
      // the oldest entries do).
      if (this.scopes.size >= MAX_SCOPES) this.scopes.delete(this.scopes.keys().next().value!);
      number = this.nextScope++;
      this.scopes.set(scope, number);
    }
    return number;
  }

  private async sendAndNote(subgraph: string, options: ProcessOptions, send: (options: ProcessOptions) => Promise<EntityFetchAnswer>) {
    return (await this.sendAndNoteAnswer(subgraph, options, send)).response;
  }

  private async sendAndNoteAnswer(subgraph: string, options: ProcessOptions, send: (options: ProcessOptions) => Promise<EntityFetchAnswer>) {
    const answer = await send(options);
    if (answer.announced) this.announcing.add(subgraph);
    else if (answer.announced === false && this.announcing.delete(subgraph)) {
      this.log.info({ subgraph }, 'subgraph no longer announces entity invalidation; its cached entities are no longer used');
    }
    return answer;
  }

  /** A partial fetch whose answer does not fit the representations asked: the whole fetch fails as the subgraph's. */
  private unusable(subgraph: string, response: GatewayGraphQLResponse): GatewayGraphQLResponse {
    return {
      data: null,
      errors: [
        ...(response.errors ?? []),
        { message: `The ${subgraph} service answered an entity list that does not match the representations sent.`, extensions: { code: 'SUBGRAPH_INVALID_RESPONSE', serviceName: subgraph } },
      ],
    };
  }
}
