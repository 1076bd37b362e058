import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@shop/common';
import { readRouterConfig } from '../src/config.js';

describe('router config', () => {
  it('takes the supergraph and port from flags over the environment', () => {
    const config = readRouterConfig(['--port', '5005', '--supergraph', 'other.graphql'], {
      PORT: '4000',
      SUPERGRAPH_PATH: '/elsewhere.graphql',
      INIT_CWD: '/work/project',
    });
    expect(config.port).toBe(5005);
    expect(config.supergraphPath).toBe(path.resolve('/work/project', 'other.graphql'));
  });

  it('reads subgraph URL overrides for any subgraph name', () => {
    const config = readRouterConfig([], {
      INVENTORY_SUBGRAPH_URL: 'http://inventory:4000/graphql',
      GIFT_CARDS_SUBGRAPH_URL: 'http://gift-cards/graphql',
    });
    expect(config.subgraphUrls).toEqual({
      inventory: 'http://inventory:4000/graphql',
      gift_cards: 'http://gift-cards/graphql',
    });
  });

  it('reads resilience settings, with a deadline per subgraph over the default', () => {
    expect(readRouterConfig([], {}).resilience).toEqual({
      timeoutMs: 10_000,
      timeoutsMs: {},
      breakerFailures: 5,
      breakerCooldownMs: 5_000,
      breakerCheckMs: 250,
      retries: 1,
      retryDelayMs: 50,
      dedup: true,
    });
    const config = readRouterConfig([], {
      SUBGRAPH_TIMEOUT_MS: '3000',
      INVENTORY_SUBGRAPH_TIMEOUT_MS: '500',
      GIFT_CARDS_SUBGRAPH_TIMEOUT_MS: '250',
      SUBGRAPH_BREAKER_FAILURES: '0',
      SUBGRAPH_BREAKER_COOLDOWN_MS: '2000',
      SUBGRAPH_BREAKER_CHECK_MS: '0',
      SUBGRAPH_RETRIES: '0',
      SUBGRAPH_RETRY_DELAY_MS: '10',
      SUBGRAPH_DEDUP: 'false',
    });
    expect(config.resilience).toEqual({
      timeoutMs: 3000,
      timeoutsMs: { inventory: 500, gift_cards: 250 },
      breakerFailures: 0,
      breakerCooldownMs: 2000,
      breakerCheckMs: 0,
      retries: 0,
      retryDelayMs: 10,
      dedup: false,
    });
    // A per-subgraph deadline is not mistaken for a subgraph URL.
    expect(config.subgraphUrls).toEqual({});
  });

  it.each([
    [{ INVENTORY_SUBGRAPH_TIMEOUT_MS: '0' }, /INVENTORY_SUBGRAPH_TIMEOUT_MS/],
    [{ SUBGRAPH_BREAKER_FAILURES: '-1' }, /SUBGRAPH_BREAKER_FAILURES/],
    [{ SUBGRAPH_BREAKER_COOLDOWN_MS: 'soon' }, /SUBGRAPH_BREAKER_COOLDOWN_MS/],
    [{ SUBGRAPH_RETRIES: '4' }, /SUBGRAPH_RETRIES/],
    [{ SUBGRAPH_DEDUP: 'maybe' }, /SUBGRAPH_DEDUP/],
    [{ USERS_SUBGRAPH_URL: 'not a url' }, /USERS_SUBGRAPH_URL/],
    [{ PORT: '70000' }, /PORT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
  ])('fails fast on %j', (env, message) => {
    expect(() => readRouterConfig([], env)).toThrow(ConfigError);
    expect(() => readRouterConfig([], env)).toThrow(message);
  });

  it('refuses unknown flags', () => {
    expect(() => readRouterConfig(['--prot', '1'], {})).toThrow(/prot/);
  });
});
