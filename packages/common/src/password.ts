import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

function scrypt(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password, salt, length, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/**
 * N=2^17, r=8, p=1: OWASP's recommendation. Each hash takes 128 MiB (128 × N × r bytes) and roughly 0.2-0.5 s of
 * one libuv thread; at most four run at once (the thread pool), so logins cost up to about half a GiB at their peak.
 * The parameters are stored in each hash, so older hashes (N=2^16) keep verifying and can be raised without a reset.
 */
const N = 2 ** 17;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
/** Largest parameters a stored hash may ask for: beyond them it is refused, not computed (memory and time). */
const MAX_N = 2 ** 18;
const MAX_R = 16;
const MAX_P = 4;

/** What scrypt needs for these parameters (128 × N × r for its table, 128 × r × p for its blocks), with room. */
function maxmemFor(n: number, r: number, p: number): number {
  return 128 * n * r + 128 * r * p + 1024 * 1024;
}

/** `scrypt$N$r$p$salt$key` (base64url): the parameters travel with the hash, so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, { N, r: R, p: P, maxmem: maxmemFor(N, R, P) });
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
  const [cost, blockSize, parallelism] = [Number(n), Number(r), Number(p)];
  const sane = (value: number, max: number) => Number.isInteger(value) && value >= 1 && value <= max;
  if (!sane(cost, MAX_N) || !sane(blockSize, MAX_R) || !sane(parallelism, MAX_P)) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: cost,
    r: blockSize,
    p: parallelism,
    maxmem: maxmemFor(cost, blockSize, parallelism),
  });
  return timingSafeEqual(actual, expected) && encoded !== undefined && encoded !== null;
}
