import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

function scrypt(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password, salt, length, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/**
 * N=2^16, r=8, p=1: 64 MiB and roughly 0.1-0.25 s per hash, half OWASP's N=2^17 so logins and test starts on
 * small machines stay quick. The parameters are stored in each hash, so they can be raised without a reset.
 */
const N = 2 ** 16;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
const maxmem = 256 * 1024 * 1024;

/** `scrypt$N$r$p$salt$key` (base64url): the parameters travel with the hash, so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, { N, r: R, p: P, maxmem });
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

// Compared against when there is no hash (unknown email), so that case costs the same work as a wrong password.
let dummyHash: Promise<string> | undefined;

/** Computes the stand-in hash ahead of time, so the first login with an unknown email is not slower than later ones. */
export function preparePasswordChecks(): Promise<unknown> {
  return (dummyHash ??= hashPassword(randomBytes(16).toString('hex')));
}

/** Whether `password` matches `encoded`; with no hash, does the same work and answers false. */
export async function verifyPassword(password: string, encoded: string | null | undefined): Promise<boolean> {
  const hash = encoded ?? (await (dummyHash ??= hashPassword(randomBytes(16).toString('hex'))));
  const [scheme, n, r, p, salt, key] = hash.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem,
  });
  return timingSafeEqual(actual, expected) && encoded !== undefined && encoded !== null;
}
