import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@shop/common';
import { CircuitBreaker, CircuitOpenError, SubgraphResilience, type ResilienceConfig } from '../src/resilience.js';
import { isQueryText } from '../src/datasource.js';
import { createHttpFetch } from '../src/http-fetch.js';
import { startUpstream, type Upstream } from './upstream.js';

const log = createLogger('resilience-test', 'silent');
const QUERY = JSON.stringify({ query: 'query Q__inventory__0 { __typename }', variables: {} });
const ANONYMOUS_QUERY = JSON.stringify({ query: '{ __typename }' });
const MUTATION = JSON.stringify({ query: 'mutation M__inventory__0 { restock(productId: "p", quantity: 1) { id } }' });
const ANSWER = { data: { __typename: 'Query' } };

const settings = (overrides: Partial<ResilienceConfig> = {}): ResilienceConfig => ({
  timeoutMs: 10_000,
  timeoutsMs: {},
  breakerFailures: 3,
  breakerCooldownMs: 300,
  retries: 1,
  retryDelayMs: 5,
  dedup: true,
  ...overrides,
});

function counters() {
  const counts = { opened: 0, rejected: 0, retried: 0, deduplicated: 0 };
  return {
    counts,
    events: {
      breakerOpened: () => counts.opened++,
      rejected: () => counts.rejected++,
      retried: () => counts.retried++,
      deduplicated: () => counts.deduplicated++,
    },
  };
}

const post = (body: string, headers: Record<string, string> = {}) => ({
  headers: { 'content-type': 'application/json', ...headers },
  body,
});

/** One subgraph's requests as the data source sends them: a query or not, by the operation's text. */
const fetcherOf =
  (resilience: SubgraphResilience, subgraph: string) =>
  async (url: string, init: ReturnType<typeof post>) => {
    const answer = await resilience.send(subgraph, url, init.headers, init.body, isQueryText((JSON.parse(init.body) as { query: string }).query));
    return { status: answer.status, json: async (): Promise<unknown> => JSON.parse(answer.body), answer };
  };

let upstreams: Upstream[] = [];
async function upstream(): Promise<Upstream> {
  const started = await startUpstream({ json: ANSWER });
  upstreams.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

// The router's own fetch (node:http keep-alive) and Node's fetch (undici) fail in different ways; both must be classified alike.
describe.each([
  ['node:http fetch', createHttpFetch()],
  ['undici fetch', fetch],
])('with %s', (_name, fetchImpl) => {
  const resilienceWith = (config: ResilienceConfig, events = {}) => new SubgraphResilience(config, log, events, fetchImpl);

  describe('circuit breaker', () => {
    it('opens after consecutive failures, fails fast without calling, then lets one probe through and closes', async () => {
      const target = await upstream();
      const { counts, events } = counters();
      const resilience = resilienceWith(settings({ retries: 0 }), events);
      const fetcher = fetcherOf(resilience, 'inventory');

      target.mode = 'drop';
      for (let i = 0; i < 3; i++) await expect(fetcher(target.url, post(QUERY))).rejects.toThrow();
      expect(target.arrivals).toHaveLength(3);
      expect(resilience.states()).toEqual({ inventory: 'open' });
      expect(counts.opened).toBe(1);

      // Open: refused at once, nothing reaches the subgraph.
      for (let i = 0; i < 5; i++) await expect(fetcher(target.url, post(QUERY))).rejects.toBeInstanceOf(CircuitOpenError);
      expect(target.arrivals).toHaveLength(3);
      expect(counts.rejected).toBe(5);

      // After the cooldown one probe goes out; the others keep failing fast while it is in flight.
      target.mode = 'answer';
      target.hold();
      await delay(400);
      const probe = fetcher(target.url, post(QUERY));
      await target.arrived(4);
      expect(resilience.states()).toEqual({ inventory: 'half-open' });
      await expect(fetcher(target.url, post(ANONYMOUS_QUERY))).rejects.toBeInstanceOf(CircuitOpenError);
      target.release();
      expect(await (await probe).json()).toEqual(ANSWER);
      expect(resilience.states()).toEqual({ inventory: 'closed' });

      const after = await fetcher(target.url, post(QUERY));
      expect(after.status).toBe(200);
      expect(target.arrivals).toHaveLength(5);
    });

    it('opens again when the probe fails, and counts 5xx answers and timeouts as failures', async () => {
      const target = await upstream();
      const { counts, events } = counters();
      const resilience = resilienceWith(settings({ retries: 0, timeoutsMs: { inventory: 150 } }), events);
      const fetcher = fetcherOf(resilience, 'inventory');

      target.mode = 'error';
      expect((await fetcher(target.url, post(QUERY))).status).toBe(503);
      expect((await fetcher(target.url, post(QUERY))).status).toBe(503);
      target.mode = 'hang';
      await expect(fetcher(target.url, post(QUERY))).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(resilience.states()).toEqual({ inventory: 'open' });

      await delay(400);
      target.mode = 'error';
      expect((await fetcher(target.url, post(QUERY))).status).toBe(503);
      expect(resilience.states()).toEqual({ inventory: 'open' });
      expect(counts.opened).toBe(2);
      await expect(fetcher(target.url, post(QUERY))).rejects.toBeInstanceOf(CircuitOpenError);
      expect(target.arrivals).toHaveLength(4);
    });

    it('keeps subgraphs apart: one open breaker does not stop another subgraph', async () => {
      const dead = await upstream();
      const alive = await upstream();
      dead.mode = 'drop';
      const resilience = resilienceWith(settings({ retries: 0, breakerFailures: 1 }));
      await expect(fetcherOf(resilience, 'inventory')(dead.url, post(QUERY))).rejects.toThrow();
      expect((await fetcherOf(resilience, 'products')(alive.url, post(QUERY))).status).toBe(200);
      expect(resilience.states()).toEqual({ inventory: 'open', products: 'closed' });
    });

    it('lets the probe through as soon as the subgraph answers its health check, long before the cooldown', async () => {
      const target = await upstream();
      const resilience = resilienceWith(settings({ retries: 0, breakerCooldownMs: 30_000, breakerCheckMs: 50 }));
      const fetcher = fetcherOf(resilience, 'inventory');
      // Health checks are the GETs: no body.
      const healthChecks = () => target.arrivals.filter((arrival) => arrival.body === '').length;
      try {
        target.mode = 'drop';
        for (let i = 0; i < 3; i++) await expect(fetcher(target.url, post(QUERY))).rejects.toThrow();
        expect(resilience.states()).toEqual({ inventory: 'open' });
        await delay(300);
        // Checked in the background, one at a time, while it stays down; fetches still fail fast.
        expect(healthChecks()).toBeGreaterThanOrEqual(2);
        expect(healthChecks()).toBeLessThanOrEqual(7);
        await expect(fetcher(target.url, post(QUERY))).rejects.toBeInstanceOf(CircuitOpenError);

        target.mode = 'answer';
        const back = performance.now();
        let answer: Awaited<ReturnType<ReturnType<typeof fetcherOf>>> | undefined;
        while (!answer) {
          answer = await fetcher(target.url, post(QUERY)).catch((error: unknown) => {
            expect(error).toBeInstanceOf(CircuitOpenError);
            return undefined;
          });
          if (!answer) await delay(10);
        }
        expect(performance.now() - back).toBeLessThan(1_000);
        expect(await answer.json()).toEqual(ANSWER);
        expect(resilience.states()).toEqual({ inventory: 'closed' });
        // Closed: no more checks.
        const checked = healthChecks();
        await delay(200);
        expect(healthChecks()).toBe(checked);
      } finally {
        resilience.close();
      }
    });

    it('stops checking when closed (router shutdown)', async () => {
      const target = await upstream();
      const resilience = resilienceWith(settings({ retries: 0, breakerCooldownMs: 30_000, breakerCheckMs: 30 }));
      target.mode = 'drop';
      for (let i = 0; i < 3; i++) await expect(fetcherOf(resilience, 'inventory')(target.url, post(QUERY))).rejects.toThrow();
      await delay(100);
      resilience.close();
      await delay(50);
      const arrived = target.arrivals.length;
      await delay(200);
      expect(target.arrivals).toHaveLength(arrived);
    });

    it('stays closed when turned off (0 failures)', async () => {
      const target = await upstream();
      target.mode = 'drop';
      const resilience = resilienceWith(settings({ retries: 0, breakerFailures: 0 }));
      for (let i = 0; i < 6; i++) await expect(fetcherOf(resilience, 'inventory')(target.url, post(QUERY))).rejects.toThrow();
      expect(target.arrivals).toHaveLength(6);
      expect(resilience.states()).toEqual({ inventory: 'closed' });
    });
  });

  describe('retries', () => {
    it('sends a query once more when its connection failed before any answer', async () => {
      const target = await upstream();
      const { counts, events } = counters();
      const fetcher = fetcherOf(resilienceWith(settings(), events), 'inventory');
      target.mode = 'drop';
      const answered = fetcher(target.url, post(QUERY));
      // The first attempt is cut; the retry finds the subgraph answering again.
      await target.arrived(1);
      target.mode = 'answer';
      expect(await (await answered).json()).toEqual(ANSWER);
      expect(target.arrivals).toHaveLength(2);
      expect(counts.retried).toBe(1);
    });

    it('retries a refused connection once, then gives up', async () => {
      const target = await upstream();
      const url = target.url;
      await target.close();
      upstreams = [];
      const { counts, events } = counters();
      const fetcher = fetcherOf(resilienceWith(settings(), events), 'inventory');
      await expect(fetcher(url, post(QUERY))).rejects.toThrow();
      expect(counts.retried).toBe(1);
    });

    it('never sends a mutation twice', async () => {
      const target = await upstream();
      const { counts, events } = counters();
      const fetcher = fetcherOf(resilienceWith(settings({ retries: 3 }), events), 'inventory');
      target.mode = 'drop';
      await expect(fetcher(target.url, post(MUTATION))).rejects.toThrow();
      expect(target.arrivals).toHaveLength(1);
      expect(counts.retried).toBe(0);
    });

    it('does not retry a 5xx answer or a timeout: the subgraph may have done the work', async () => {
      const target = await upstream();
      const fetcher = fetcherOf(resilienceWith(settings({ timeoutMs: 150 })), 'inventory');
      target.mode = 'error';
      expect((await fetcher(target.url, post(QUERY))).status).toBe(503);
      target.mode = 'hang';
      await expect(fetcher(target.url, post(QUERY))).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(target.arrivals).toHaveLength(2);
    });
  });

  describe('deadlines', () => {
    it('applies a subgraph its own deadline and the default to the others', async () => {
      const target = await upstream();
      target.mode = 'hang';
      const resilience = resilienceWith(settings({ timeoutMs: 10_000, timeoutsMs: { inventory: 100 } }));
      let productsSettled = false;
      const products = fetcherOf(resilience, 'products')(target.url, post(QUERY)).finally(() => (productsSettled = true));
      await expect(fetcherOf(resilience, 'inventory')(target.url, post(QUERY))).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(productsSettled).toBe(false);
      // Cut while waiting for an answer: the query is sent again and answered.
      target.mode = 'answer';
      target.cutConnections();
      expect((await products).status).toBe(200);
    });
  });

  describe('deduplication', () => {
    it('sends identical queries in flight once and gives every caller the whole answer', async () => {
      const target = await upstream();
      const { counts, events } = counters();
      const fetcher = fetcherOf(resilienceWith(settings(), events), 'inventory');
      target.hold();
      const headers = { authorization: 'Bearer a', 'x-request-id': 'differs-per-request' };
      const responses = Array.from({ length: 8 }, (_, i) => fetcher(target.url, post(QUERY, { ...headers, 'x-request-id': `r${i}` })));
      await target.arrived(1);
      expect(counts.deduplicated).toBe(7);
      target.release();
      const bodies = await Promise.all(responses.map(async (r) => (await r).json()));
      expect(bodies).toEqual(Array.from({ length: 8 }, () => ANSWER));
      expect(target.arrivals).toHaveLength(1);

      // Once answered, the same query goes out again.
      await fetcher(target.url, post(QUERY, headers));
      expect(target.arrivals).toHaveLength(2);
    });

    it('never merges different callers, different queries or mutations', async () => {
      const target = await upstream();
      const { counts, events } = counters();
      const fetcher = fetcherOf(resilienceWith(settings(), events), 'inventory');
      target.hold();
      const calls = [
        fetcher(target.url, post(QUERY, { authorization: 'Bearer a' })),
        fetcher(target.url, post(QUERY, { authorization: 'Bearer b' })),
        fetcher(target.url, post(QUERY, { authorization: 'Bearer a', 'x-shop-identity': 'user-1' })),
        fetcher(target.url, post(QUERY, { authorization: 'Bearer a', 'x-shop-identity': 'user-2' })),
        fetcher(target.url, post(ANONYMOUS_QUERY, { authorization: 'Bearer a' })),
        fetcher(target.url, post(MUTATION, { authorization: 'Bearer a' })),
        fetcher(target.url, post(MUTATION, { authorization: 'Bearer a' })),
      ];
      await target.arrived(calls.length);
      target.release();
      await Promise.all(calls);
      expect(target.arrivals).toHaveLength(7);
      expect(counts.deduplicated).toBe(0);
    });

    it('is off when configured so', async () => {
      const target = await upstream();
      const fetcher = fetcherOf(resilienceWith(settings({ dedup: false })), 'inventory');
      target.hold();
      const calls = [fetcher(target.url, post(QUERY)), fetcher(target.url, post(QUERY))];
      await target.arrived(2);
      target.release();
      await Promise.all(calls);
      expect(target.arrivals).toHaveLength(2);
    });
  });
});

describe('CircuitBreaker', () => {
  it('goes half-open at the first fetch after allowProbe, before the cooldown, and only when open', () => {
    let now = 0;
    const breaker = new CircuitBreaker(2, 30_000, undefined, () => now);
    breaker.allowProbe();
    breaker.failed(false);
    breaker.failed(false);
    expect(breaker.state).toBe('open');
    expect(breaker.consecutiveOpens).toBe(1);
    now = 1_000;
    expect(breaker.acquire()).toEqual({ allowed: false, probe: false });
    breaker.allowProbe();
    expect(breaker.acquire()).toEqual({ allowed: true, probe: true });
    expect(breaker.state).toBe('half-open');
    expect(breaker.acquire()).toEqual({ allowed: false, probe: false });
    // A failed probe opens it for a whole cooldown again, unless the next check allows a probe.
    breaker.failed(true);
    expect(breaker.consecutiveOpens).toBe(2);
    expect(breaker.acquire()).toEqual({ allowed: false, probe: false });
    now = 31_000;
    expect(breaker.acquire()).toEqual({ allowed: true, probe: true });
    breaker.succeeded(true);
    expect(breaker.state).toBe('closed');
    expect(breaker.consecutiveOpens).toBe(0);
  });
});

describe('answers handed to the data source', () => {
  it('carry status, lower-case headers without the transfer ones, and the body text; shared answers are one read', async () => {
    const target = await upstream();
    const fetcher = fetcherOf(new SubgraphResilience(settings(), log, {}, createHttpFetch()), 'inventory');
    target.hold();
    const [a, b] = [fetcher(target.url, post(QUERY)), fetcher(target.url, post(QUERY))];
    await target.arrived(1);
    target.release();
    const [first, second] = await Promise.all([a, b]);
    expect(target.arrivals).toHaveLength(1);
    expect(first.answer).toMatchObject({ status: 200, url: target.url, body: JSON.stringify(ANSWER) });
    expect(first.answer.headers.get('content-type')).toBe('application/json');
    expect(first.answer.headers.has('content-length')).toBe(false);
    // Every caller parses its own object.
    const [parsed, other] = [await first.json(), await second.json()];
    expect(parsed).toEqual(ANSWER);
    expect(other).toEqual(ANSWER);
    expect(other).not.toBe(parsed);
  });

  it('passes an error status on with its body', async () => {
    const target = await upstream();
    target.mode = 'error';
    const response = await fetcherOf(new SubgraphResilience(settings({ retries: 0 }), log, {}, createHttpFetch()), 'inventory')(target.url, post(MUTATION));
    expect(response.status).toBe(503);
    expect(typeof response.answer.body).toBe('string');
  });
});

describe('isQueryText', () => {
  it.each([
    ['query Q__inventory__0 { __typename }', true],
    ['{ __typename }', true],
    ['\n  query Q { x }', true],
    ['query($representations:[_Any!]!){_entities(representations:$representations){...on Product{stock}}}', true],
    ['mutation M { x }', false],
    ['subscription S { x }', false],
    ['queryX { x }', false],
    ['', false],
  ])('%j: %s', (text, expected) => {
    expect(isQueryText(text)).toBe(expected);
  });
});
