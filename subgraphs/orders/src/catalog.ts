import { setTimeout as sleep } from 'node:timers/promises';
import { GraphQLError } from 'graphql';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, signIdentity, traceHeaders, type Logger } from '@shop/common';

/** A product as placing an order needs it: the name and the current price to capture. */
export interface CatalogProduct {
  id: string;
  name: string;
  price: { amount: number; currency: string };
}

/**
 * The users or products subgraph could not answer (network error, timeout, 5xx, or errors in its answer)
 * even after retries. Clients may simply try again.
 */
export class ServiceUnavailableError extends GraphQLError {
  constructor(service: string, detail: string) {
    super(`The ${service} service is unavailable (${detail}); nothing was written, please try again`, {
      extensions: { code: 'SERVICE_UNAVAILABLE', service },
    });
    this.name = 'ServiceUnavailableError';
  }
}

/** A failure worth another attempt: the request may succeed a moment later. */
class TransientError extends Error {
  override name = 'TransientError';
}

export interface CatalogClientOptions {
  usersUrl: string;
  productsUrl: string;
  timeoutMs: number;
  retries: number;
  /** First pause between attempts; doubled after each. */
  backoffMs?: number;
  log: Logger;
  /** IDENTITY_SECRET: look-ups are signed as the orders service, so the owners' rules let them through. */
  identitySecret: string;
}

interface EntitiesBody {
  data?: { _entities?: unknown } | null;
  errors?: { message?: string }[];
}

const USERS_QUERY = 'query($r:[_Any!]!){ _entities(representations:$r){ ... on User { id } } }';
const PRODUCTS_QUERY =
  'query($r:[_Any!]!){ _entities(representations:$r){ ... on Product { id name price { amount currency } } } }';

function isProduct(value: unknown): value is CatalogProduct {
  if (typeof value !== 'object' || value === null) return false;
  const { id, name, price } = value as Record<string, unknown>;
  if (typeof id !== 'string' || typeof name !== 'string' || typeof price !== 'object' || price === null) return false;
  const { amount, currency } = price as Record<string, unknown>;
  return Number.isInteger(amount) && typeof currency === 'string';
}

/**
 * Asks the subgraphs that own users and products about them, with one batched `_entities` request per
 * subgraph, a timeout per attempt, and a few retries with backoff for failures that may pass.
 */
export class CatalogClient {
  constructor(private readonly options: CatalogClientOptions) {}

  /** The ids among `ids` that belong to existing users. */
  async existingUsers(ids: readonly string[], requestId: string): Promise<Set<string>> {
    const entities = await this.entities('users', this.options.usersUrl, USERS_QUERY, 'User', ids, requestId);
    const found = new Set<string>();
    for (const entity of entities) {
      const id = (entity as { id?: unknown } | null)?.id;
      if (typeof id === 'string') found.add(id.toLowerCase());
    }
    return found;
  }

  /** The existing products among `ids`, by id. */
  async products(ids: readonly string[], requestId: string): Promise<Map<string, CatalogProduct>> {
    const entities = await this.entities('products', this.options.productsUrl, PRODUCTS_QUERY, 'Product', ids, requestId);
    const found = new Map<string, CatalogProduct>();
    for (const entity of entities) {
      if (entity === null) continue;
      if (!isProduct(entity)) throw new ServiceUnavailableError('products', 'it answered with an unexpected product shape');
      found.set(entity.id.toLowerCase(), entity);
    }
    return found;
  }

  private async entities(
    service: string,
    url: string,
    query: string,
    typename: string,
    ids: readonly string[],
    requestId: string,
  ): Promise<unknown[]> {
    const { retries, backoffMs = 100, log } = this.options;
    const body = JSON.stringify({ query, variables: { r: ids.map((id) => ({ __typename: typename, id })) } });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.post(service, url, body, requestId, ids.length);
      } catch (error) {
        if (!(error instanceof TransientError)) throw error;
        if (attempt >= retries) throw new ServiceUnavailableError(service, error.message);
        log.warn({ service, attempt: attempt + 1, err: error }, 'look-up failed; retrying');
        await sleep(backoffMs * 2 ** attempt);
      }
    }
  }

  private async post(service: string, url: string, body: string, requestId: string, count: number): Promise<unknown[]> {
    let response: Response;
    let parsed: EntitiesBody;
    try {
      // One signal for the whole exchange, so a server that stalls mid-body also times out.
      const signal = AbortSignal.timeout(this.options.timeoutMs);
      response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [REQUEST_ID_HEADER]: requestId,
          [IDENTITY_HEADER]: signIdentity({ sub: 'orders', role: 'SERVICE' }, service, this.options.identitySecret),
          // The look-up belongs to the placeOrder request's trace.
          ...traceHeaders(),
        },
        body,
        signal,
      });
      if (response.status >= 500) throw new TransientError(`HTTP ${response.status}`);
      parsed = (await response.json()) as EntitiesBody;
    } catch (error) {
      if (error instanceof TransientError) throw error;
      if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
        throw new TransientError(`no answer within ${this.options.timeoutMs} ms`);
      }
      throw new TransientError(error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error));
    }
    // A 4xx means this query does not fit the subgraph's schema: a bug here, not an outage.
    if (!response.ok) throw new Error(`${service} subgraph refused the entity query with HTTP ${response.status}`);
    const entities = parsed.data?._entities;
    if (parsed.errors?.length || !Array.isArray(entities) || entities.length !== count) {
      throw new ServiceUnavailableError(service, parsed.errors?.[0]?.message ?? 'it answered without the entities');
    }
    return entities;
  }
}
