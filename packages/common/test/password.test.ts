import { randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../src/password.js';

describe('password hashing', () => {
  it('hashes with scrypt N=2^17, r=8, p=1, stored with the hash', async () => {
    const hash = await hashPassword('a long passphrase');
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(await verifyPassword('a long passphrase', hash)).toBe(true);
    expect(await verifyPassword('a long passphrase!', hash)).toBe(false);
  });

  it('keeps verifying hashes made with the earlier N=2^16', async () => {
    const salt = randomBytes(16);
    const key = scryptSync('old password', salt, 32, { N: 2 ** 16, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
    const old = ['scrypt', 2 ** 16, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
    expect(await verifyPassword('old password', old)).toBe(true);
    expect(await verifyPassword('new password', old)).toBe(false);
  });

  it('refuses, without computing, a stored hash that asks for absurd parameters', async () => {
    const started = performance.now();
    for (const params of ['1073741824$8$1', '131072$1024$1', '131072$8$64', 'x$8$1', '131072$8$0']) {
      expect(await verifyPassword('p', `scrypt$${params}$c2FsdA$a2V5`)).toBe(false);
    }
    expect(performance.now() - started).toBeLessThan(50);
  });
});
