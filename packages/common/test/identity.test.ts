import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IDENTITY_TTL_SECONDS, rememberedIdentitySignatures, signIdentity, verifyIdentity, type Identity } from '../src/identity.js';

const SECRET = 'identity-test-secret-of-some-length';
const NOW = 1_800_000_000_500;

/** The header as it was signed before signatures were remembered: computed afresh, here, every time. */
function signedAfresh(identity: Identity, audience: string, secret: string, nowMs: number): string {
  const payload = { sub: identity.sub, role: identity.role, aud: audience, exp: Math.floor(nowMs / 1000) + IDENTITY_TTL_SECONDS };
  const encoded = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${encoded}.${createHmac('sha256', secret).update(encoded).digest('base64url')}`;
}

const payloadOf = (header: string) => JSON.parse(Buffer.from(header.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('signIdentity', () => {
  it('gives the header computed afresh, on the first call and on repeated ones', () => {
    const admin: Identity = { sub: 'user-1', role: 'ADMIN' };
    for (let i = 0; i < 3; i++) expect(signIdentity(admin, 'orders', SECRET, NOW)).toBe(signedAfresh(admin, 'orders', SECRET, NOW));
    expect(verifyIdentity(signIdentity(admin, 'orders', SECRET, NOW), 'orders', SECRET, NOW)).toEqual(admin);
  });

  it('never hands one identity, audience, role or secret the signature of another', () => {
    const cases: [Identity, string, string][] = [
      [{ sub: 'user-1', role: 'CUSTOMER' }, 'orders', SECRET],
      [{ sub: 'user-1', role: 'ADMIN' }, 'orders', SECRET],
      [{ sub: 'user-2', role: 'CUSTOMER' }, 'orders', SECRET],
      [{ sub: 'user-1', role: 'CUSTOMER' }, 'users', SECRET],
      [{ sub: 'user-1', role: 'CUSTOMER' }, 'orders', `${SECRET}-other`],
      // Same characters, split differently between audience and subject.
      [{ sub: 'sorders', role: 'CUSTOMER' }, 'user', SECRET],
      [{ sub: 'orders', role: 'CUSTOMER' }, 'users', SECRET],
    ];
    const headers = cases.map(([identity, audience, secret]) => signIdentity(identity, audience, secret, NOW));
    expect(new Set(headers).size).toBe(cases.length);
    cases.forEach(([identity, audience, secret], i) => {
      expect(headers[i]).toBe(signedAfresh(identity, audience, secret, NOW));
      expect(verifyIdentity(headers[i]!, audience, secret, NOW)).toEqual(identity);
    });
  });

  it('signs a new expiry each second, never an earlier one', () => {
    const identity: Identity = { sub: 'user-3', role: 'CUSTOMER' };
    const first = signIdentity(identity, 'products', SECRET, NOW);
    const nextSecond = signIdentity(identity, 'products', SECRET, NOW + 1_000);
    expect(payloadOf(first).exp).toBe(Math.floor(NOW / 1000) + IDENTITY_TTL_SECONDS);
    expect(payloadOf(nextSecond).exp).toBe(Math.floor(NOW / 1000) + 1 + IDENTITY_TTL_SECONDS);
    // Back to the first second (a test clock): still that second's own header.
    expect(signIdentity(identity, 'products', SECRET, NOW)).toBe(first);
    // An expired header stays refused.
    expect(() => verifyIdentity(first, 'products', SECRET, NOW + IDENTITY_TTL_SECONDS * 1000)).toThrow(/expired/);
  });

  it('remembers a bounded number of signatures', () => {
    for (let i = 0; i < 5_000; i++) {
      const identity: Identity = { sub: `user-${i}`, role: 'CUSTOMER' };
      expect(signIdentity(identity, 'orders', SECRET, NOW)).toBe(signedAfresh(identity, 'orders', SECRET, NOW));
    }
    // At most 1,000 for this secret, plus the few the other tests left under theirs.
    expect(rememberedIdentitySignatures()).toBeLessThanOrEqual(1_010);
    expect(rememberedIdentitySignatures()).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) signIdentity({ sub: 'user-1', role: 'CUSTOMER' }, 'orders', `secret-${i}`, NOW);
    expect(rememberedIdentitySignatures()).toBeLessThanOrEqual(8 * 1_000);
  });
});

describe('verifyIdentity', () => {
  it('checks audience and expiry again when the same header comes back, and never trusts another secret', () => {
    const customer: Identity = { sub: 'user-7', role: 'CUSTOMER' };
    const header = signIdentity(customer, 'orders', SECRET, NOW);
    for (let i = 0; i < 3; i++) expect(verifyIdentity(header, 'orders', SECRET, NOW)).toEqual(customer);
    expect(() => verifyIdentity(header, 'users', SECRET, NOW)).toThrow(/not users/);
    expect(() => verifyIdentity(header, 'orders', `${SECRET}-other`, NOW)).toThrow(/signature/);
    expect(() => verifyIdentity(header, 'orders', SECRET, NOW + IDENTITY_TTL_SECONDS * 1000)).toThrow(/expired/);
    // Forgotten once seen expired: asked about an earlier time, it is verified afresh.
    expect(verifyIdentity(header, 'orders', SECRET, NOW)).toEqual(customer);
  });

  it('refuses a header whose payload was altered after a genuine one was verified', () => {
    const header = signIdentity({ sub: 'user-7', role: 'CUSTOMER' }, 'orders', SECRET, NOW);
    expect(verifyIdentity(header, 'orders', SECRET, NOW).role).toBe('CUSTOMER');
    const [, signature] = header.split('.');
    const forged = `${Buffer.from(JSON.stringify({ ...payloadOf(header), role: 'ADMIN' })).toString('base64url')}.${signature}`;
    expect(() => verifyIdentity(forged, 'orders', SECRET, NOW)).toThrow(/signature/);
  });
});
