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

  it.each([
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
