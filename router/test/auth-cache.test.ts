import { describe, expect, it } from 'vitest';
import { GraphQLError } from 'graphql';
import { DEV_IDENTITY_SECRET, DEV_JWT_SECRET, InvalidTokenError, TokenIssuer, createLogger, verifyIdentity, type VerifiedToken } from '@shop/common';
import { VerifiedTokenCache, createAuthenticator } from '../src/auth.js';

const log = createLogger('auth-cache-test', 'silent');
const jwt = { secret: DEV_JWT_SECRET, jwksUrl: undefined, issuer: 'shop-users', audience: 'shop' };
const config = { jwt, identitySecret: DEV_IDENTITY_SECRET };

/** A clock the test moves. */
function clock(startMs = 1_800_000_000_000) {
  const state = { ms: startMs };
  return { now: () => state.ms, advance: (ms: number) => (state.ms += ms), state };
}

/** A verifier that counts its calls and answers from a table (no entry: invalid). */
function countingVerifier(table: Record<string, VerifiedToken>) {
  const calls: string[] = [];
  return {
    calls,
    verify: async (token: string): Promise<VerifiedToken> => {
      calls.push(token);
      const known = table[token];
      if (!known) throw new InvalidTokenError('signature verification failed');
      return known;
    },
  };
}

describe('VerifiedTokenCache', () => {
  it("answers until the token's exp, never at or after it", () => {
    const time = clock();
    const cache = new VerifiedTokenCache<string>(10, 60_000, time.now);
    const exp = Math.floor(time.now() / 1000) + 5;
    cache.set('t', exp, 'alice');
    expect(cache.get('t')).toBe('alice');
    time.state.ms = exp * 1000 - 1;
    expect(cache.get('t')).toBe('alice');
    time.state.ms = exp * 1000;
    expect(cache.get('t')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('answers at most maxAge after verifying, even for a token valid much longer', () => {
    const time = clock();
    const cache = new VerifiedTokenCache<string>(10, 1_000, time.now);
    cache.set('t', Math.floor(time.now() / 1000) + 3600, 'alice');
    time.advance(999);
    expect(cache.get('t')).toBe('alice');
    time.advance(1);
    expect(cache.get('t')).toBeUndefined();
  });

  it('does not keep a token that has already expired', () => {
    const time = clock();
    const cache = new VerifiedTokenCache<string>(10, 60_000, time.now);
    cache.set('t', Math.floor(time.now() / 1000), 'alice');
    expect(cache.size).toBe(0);
    expect(cache.get('t')).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the least recently used', () => {
    const time = clock();
    const cache = new VerifiedTokenCache<string>(3, 60_000, time.now);
    const exp = Math.floor(time.now() / 1000) + 60;
    cache.set('a', exp, 'A');
    cache.set('b', exp, 'B');
    cache.set('c', exp, 'C');
    expect(cache.get('a')).toBe('A'); // a is now the most recent; b the least
    cache.set('d', exp, 'D');
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual(['A', 'C', 'D']);
    for (let i = 0; i < 100; i++) cache.set(`t${i}`, exp, String(i));
    expect(cache.size).toBe(3);
  });
});

describe('createAuthenticator with remembered tokens', () => {
  it('verifies a token once, then answers the same caller from memory', async () => {
    const time = clock();
    const exp = Math.floor(time.now() / 1000) + 600;
    const { calls, verify } = countingVerifier({ tokA: { identity: { sub: 'u1', role: 'CUSTOMER' }, exp } });
    const authenticate = createAuthenticator(config, log, verify, new VerifiedTokenCache(100, 60_000, time.now));
    const first = await authenticate('Bearer tokA');
    const second = await authenticate('Bearer tokA');
    expect(calls).toEqual(['tokA']);
    expect(second.identity).toEqual({ sub: 'u1', role: 'CUSTOMER' });
    expect(second.identityFor('orders')).toBe(first.identityFor('orders'));
    expect(verifyIdentity(second.identityFor('orders')!, 'orders', DEV_IDENTITY_SECRET)).toEqual({ sub: 'u1', role: 'CUSTOMER' });
  });

  it('never confuses two tokens', async () => {
    const time = clock();
    const exp = Math.floor(time.now() / 1000) + 600;
    const { calls, verify } = countingVerifier({
      tokA: { identity: { sub: 'u1', role: 'CUSTOMER' }, exp },
      tokB: { identity: { sub: 'u2', role: 'ADMIN' }, exp },
    });
    const authenticate = createAuthenticator(config, log, verify, new VerifiedTokenCache(100, 60_000, time.now));
    for (let i = 0; i < 3; i++) {
      expect((await authenticate('Bearer tokA')).identity).toEqual({ sub: 'u1', role: 'CUSTOMER' });
      expect((await authenticate('Bearer tokB')).identity).toEqual({ sub: 'u2', role: 'ADMIN' });
    }
    expect(calls).toEqual(['tokA', 'tokB']);
    const a = await authenticate('Bearer tokA');
    expect(verifyIdentity(a.identityFor('users')!, 'users', DEV_IDENTITY_SECRET).sub).toBe('u1');
  });

  it('checks a refused token again every time (failures are not remembered)', async () => {
    const time = clock();
    const { calls, verify } = countingVerifier({});
    const authenticate = createAuthenticator(config, log, verify, new VerifiedTokenCache(100, 60_000, time.now));
    for (let i = 0; i < 3; i++) await expect(authenticate('Bearer bad')).rejects.toBeInstanceOf(GraphQLError);
    expect(calls).toEqual(['bad', 'bad', 'bad']);
  });

  it('verifies again once the token has expired, and refuses it then', async () => {
    const time = clock();
    const exp = Math.floor(time.now() / 1000) + 2;
    const table: Record<string, VerifiedToken> = { tokA: { identity: { sub: 'u1', role: 'CUSTOMER' }, exp } };
    const { calls, verify } = countingVerifier(table);
    const authenticate = createAuthenticator(config, log, verify, new VerifiedTokenCache(100, 60_000, time.now));
    await authenticate('Bearer tokA');
    time.state.ms = exp * 1000;
    delete table.tokA; // what jose says of an expired token
    await expect(authenticate('Bearer tokA')).rejects.toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect(calls).toEqual(['tokA', 'tokA']);
  });

  it('with real tokens: an expired one is refused even after a valid one was remembered', async () => {
    const issuer = await TokenIssuer.create({ ...jwt, privateKey: undefined, ttlSeconds: 60 });
    const authenticate = createAuthenticator(config, log);
    const { token } = await issuer.issue('user-9', 'ADMIN');
    expect((await authenticate(`Bearer ${token}`)).identity).toEqual({ sub: 'user-9', role: 'ADMIN' });
    expect((await authenticate(`Bearer ${token}`)).identity).toEqual({ sub: 'user-9', role: 'ADMIN' });
    await expect(authenticate(`Bearer ${token}x`)).rejects.toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect((await authenticate(undefined)).identity).toBeNull();
  });
});
