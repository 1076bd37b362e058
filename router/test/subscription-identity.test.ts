import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEV_IDENTITY_SECRET, createLogger, signIdentity, verifyIdentity } from '@shop/common';
import { upstreamExtensions } from '../src/subscriptions.js';

afterEach(() => vi.useRealTimers());

describe('identity sent with an upstream subscription', () => {
  it('is signed again each time the subscribe message is serialized, so a resubscription after a reconnect is accepted', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    const identity = { sub: '6f9c0e0e-0000-4000-8000-000000000001', role: 'CUSTOMER' as const };
    const extensions = upstreamExtensions(
      { requestId: 'r1', log: createLogger('test', 'silent'), identity, identityFor: (aud) => signIdentity(identity, aud, DEV_IDENTITY_SECRET) },
      'orders',
    );
    const first = JSON.parse(JSON.stringify(extensions)) as { requestId: string; identity: string };
    expect(first.requestId).toBe('r1');
    // Ten minutes later (the upstream socket dropped and graphql-ws resubscribes with the same payload object).
    vi.setSystemTime(new Date('2026-01-01T00:10:00Z'));
    expect(() => verifyIdentity(first.identity, 'orders', DEV_IDENTITY_SECRET)).toThrow(/expired/);
    const again = JSON.parse(JSON.stringify(extensions)) as { identity: string };
    expect(verifyIdentity(again.identity, 'orders', DEV_IDENTITY_SECRET)).toEqual(identity);
  });

  it('carries no identity for an anonymous subscriber', () => {
    expect(JSON.parse(JSON.stringify(upstreamExtensions({ requestId: 'r2', log: createLogger('test', 'silent') }, 'orders')))).toEqual({
      requestId: 'r2',
    });
  });
});
