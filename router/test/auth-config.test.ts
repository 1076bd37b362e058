import { describe, expect, it } from 'vitest';
import { ConfigError, DEV_IDENTITY_SECRET, DEV_JWT_SECRET, readJwtIssuerConfig, readSubgraphConfig } from '@shop/common';
import { readRouterConfig } from '../src/config.js';

const SECRET = 'x'.repeat(40);
const production = { NODE_ENV: 'production', SUPERGRAPH_PATH: '/s.graphql' };

describe('authentication settings', () => {
  it('uses the public development keys outside production', () => {
    expect(readRouterConfig([], {}).auth).toEqual({
      jwt: { secret: DEV_JWT_SECRET, jwksUrl: undefined, issuer: 'shop-users', audience: 'shop' },
      identitySecret: DEV_IDENTITY_SECRET,
    });
  });

  it('fails fast in production without the identity secret or a way to verify tokens', () => {
    expect(() => readRouterConfig([], { ...production, JWT_SECRET: SECRET })).toThrow(/IDENTITY_SECRET is required/);
    expect(() => readRouterConfig([], { ...production, IDENTITY_SECRET: SECRET })).toThrow(/JWT_SECRET or JWT_JWKS_URL is required/);
    expect(() => readSubgraphConfig('orders', 4003, { NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => readJwtIssuerConfig({}, true)).toThrow(/JWT_SECRET or JWT_PRIVATE_KEY is required/);
  });

  it('refuses short secrets and the placeholders of .env.example in production', () => {
    expect(() => readRouterConfig([], { ...production, IDENTITY_SECRET: 'short', JWT_SECRET: SECRET })).toThrow(/at least 32/);
    expect(() =>
      readRouterConfig([], { ...production, IDENTITY_SECRET: 'change-me-to-a-random-secret-of-at-least-32-characters', JWT_SECRET: SECRET }),
    ).toThrow(/placeholder/);
  });

  it('refuses in production the development defaults written in the source, naming the variable', () => {
    expect(() => readRouterConfig([], { ...production, IDENTITY_SECRET: DEV_IDENTITY_SECRET, JWT_SECRET: SECRET })).toThrow(
      /IDENTITY_SECRET is a public development default/,
    );
    expect(() => readRouterConfig([], { ...production, IDENTITY_SECRET: SECRET, JWT_SECRET: DEV_JWT_SECRET })).toThrow(
      /JWT_SECRET is a public development default/,
    );
    // Either default is public in either variable.
    expect(() => readRouterConfig([], { ...production, IDENTITY_SECRET: SECRET, JWT_SECRET: DEV_IDENTITY_SECRET })).toThrow(
      /JWT_SECRET is a public development default/,
    );
    expect(() => readSubgraphConfig('orders', 4003, { NODE_ENV: 'production', IDENTITY_SECRET: DEV_IDENTITY_SECRET })).toThrow(
      /IDENTITY_SECRET is a public development default/,
    );
    expect(() => readJwtIssuerConfig({ JWT_SECRET: DEV_JWT_SECRET }, true)).toThrow(/JWT_SECRET is a public development default/);
    expect(() => readJwtIssuerConfig({ JWT_SECRET: 'change-me-to-another-random-secret-of-32-characters' }, true)).toThrow(
      /JWT_SECRET still has the placeholder/,
    );
    // Outside production the defaults are what a laptop runs with.
    expect(readRouterConfig([], { IDENTITY_SECRET: DEV_IDENTITY_SECRET, JWT_SECRET: DEV_JWT_SECRET }).auth.jwt.secret).toBe(DEV_JWT_SECRET);
  });

  it('verifies through a JWKS URL instead of a shared secret when one is given', () => {
    const config = readRouterConfig([], { ...production, IDENTITY_SECRET: SECRET, JWT_JWKS_URL: 'http://users:4000/.well-known/jwks.json' });
    expect(config.auth.jwt).toMatchObject({ secret: undefined, jwksUrl: 'http://users:4000/.well-known/jwks.json' });
  });
});
