import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError, readOptional } from './config.js';
import { DEV_IDENTITY_SECRET, checkProductionSecret } from './secrets.js';

/**
 * The identity the router (or a trusted service) vouches for on a subgraph call, in the
 * `x-shop-identity` header or a subscription's `extensions.identity`: `<payload>.<signature>`,
 * both base64url, the signature an HMAC-SHA256 of the payload under IDENTITY_SECRET.
 * Subgraphs believe nothing else about who is calling.
 */
export const IDENTITY_HEADER = 'x-shop-identity';

/** CUSTOMER and ADMIN come from logins; SERVICE is a subgraph calling another one (never in a user's token). */
export type Role = 'CUSTOMER' | 'ADMIN' | 'SERVICE';
export const ROLES: readonly Role[] = ['CUSTOMER', 'ADMIN', 'SERVICE'];

export interface Identity {
  /** The user's id, or the calling service's name for SERVICE. */
  sub: string;
  role: Role;
}

/** Lifetime of a signed identity: long enough for one request, short enough that a leaked header soon dies. */
export const IDENTITY_TTL_SECONDS = 60;

export { DEV_IDENTITY_SECRET };

export class IdentityError extends Error {
  override name = 'IdentityError';
}

interface Payload {
  sub: string;
  role: Role;
  /** The subgraph the identity is for: a header sent to one subgraph is refused by the others. */
  aud: string;
  /** Expiry, in whole seconds since the epoch. */
  exp: number;
}

const mac = (secret: string, data: string) => createHmac('sha256', secret).update(data).digest();

/**
 * Headers signed for the current expiry second, per secret. The router signs one header per subgraph fetch,
 * mostly for the same few callers; an HMAC each time was about 3% of its CPU per request. Only one expiry's
 * signatures are kept (a new second starts afresh), at most MEMO_MAX_IDENTITIES of them.
 */
interface SignatureMemo {
  exp: number;
  signed: Map<string, string>;
}
const MEMO_MAX_IDENTITIES = 1_000;
const MEMO_MAX_SECRETS = 8;
const memos = new Map<string, SignatureMemo>();

/** Signatures remembered now, over all secrets (for tests of the bound). */
export function rememberedIdentitySignatures(): number {
  let count = 0;
  for (const memo of memos.values()) count += memo.signed.size;
  return count;
}

function memoFor(secret: string, exp: number): SignatureMemo {
  let memo = memos.get(secret);
  if (!memo) {
    if (memos.size >= MEMO_MAX_SECRETS) memos.clear();
    memo = { exp, signed: new Map() };
    memos.set(secret, memo);
  } else if (memo.exp !== exp || memo.signed.size >= MEMO_MAX_IDENTITIES) {
    memo.exp = exp;
    memo.signed.clear();
  }
  return memo;
}

/**
 * Signs an identity for one subgraph. The expiry is in whole seconds, so identical calls in the
 * same second carry identical headers (and the second and later ones reuse the first's signature).
 */
export function signIdentity(identity: Identity, audience: string, secret: string, nowMs = Date.now()): string {
  const exp = Math.floor(nowMs / 1000) + IDENTITY_TTL_SECONDS;
  const memo = memoFor(secret, exp);
  // Lengths first, so no two (audience, role, sub) make the same key whatever characters they hold.
  const key = `${audience.length}:${audience}${identity.role.length}:${identity.role}${identity.sub}`;
  const known = memo.signed.get(key);
  if (known !== undefined) return known;
  const payload: Payload = { sub: identity.sub, role: identity.role, aud: audience, exp };
  const encoded = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const signed = `${encoded}.${mac(secret, encoded).toString('base64url')}`;
  memo.signed.set(key, signed);
  return signed;
}

/**
 * Identities already verified, per secret, by their exact text. The router reuses a signature for every call in the
 * same second, so a subgraph sees the same header many times; its HMAC was about 3% of a subgraph's CPU per request.
 * A hit still has its audience and expiry checked; a token is only remembered once its signature checked out.
 */
const VERIFIED_MAX = 1_000;
const verifiedBySecret = new Map<string, Map<string, Readonly<Payload>>>();

function verifiedFor(secret: string): Map<string, Readonly<Payload>> {
  let verified = verifiedBySecret.get(secret);
  if (!verified) {
    if (verifiedBySecret.size >= MEMO_MAX_SECRETS) verifiedBySecret.clear();
    verified = new Map();
    verifiedBySecret.set(secret, verified);
  }
  return verified;
}

/** Checks signature, audience and expiry; throws IdentityError naming what is wrong. */
export function verifyIdentity(token: string, audience: string, secret: string, nowMs = Date.now()): Identity {
  const verified = verifiedFor(secret);
  const known = verified.get(token);
  const payload = known ?? verifySignature(token, secret);
  if (payload.aud !== audience) throw new IdentityError(`identity is for ${String(payload.aud)}, not ${audience}`);
  if (payload.exp * 1000 <= nowMs) {
    verified.delete(token);
    throw new IdentityError('identity expired');
  }
  if (!known) {
    if (verified.size >= VERIFIED_MAX) verified.clear();
    verified.set(token, payload);
  }
  return { sub: payload.sub, role: payload.role };
}

function verifySignature(token: string, secret: string): Readonly<Payload> {
  const [encoded, signature, extra] = token.split('.');
  if (!encoded || !signature || extra !== undefined) throw new IdentityError('malformed identity');
  const expected = mac(secret, encoded);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new IdentityError('bad identity signature');
  let payload: Partial<Payload>;
  try {
    payload = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Partial<Payload>;
  } catch {
    throw new IdentityError('malformed identity payload');
  }
  if (typeof payload.sub !== 'string' || !ROLES.includes(payload.role as Role) || typeof payload.exp !== 'number') {
    throw new IdentityError('malformed identity payload');
  }
  return Object.freeze({ sub: payload.sub, role: payload.role as Role, aud: String(payload.aud), exp: payload.exp });
}

/** IDENTITY_SECRET: required in production (at least 32 characters), a public default otherwise. */
export function readIdentitySecret(env: Readonly<Record<string, string | undefined>>, production: boolean): string {
  const secret = readOptional(env, 'IDENTITY_SECRET');
  if (secret === undefined) {
    if (production) throw new ConfigError('IDENTITY_SECRET is required in production (the key router and subgraphs share)');
    return DEV_IDENTITY_SECRET;
  }
  if (production) checkProductionSecret('IDENTITY_SECRET', secret);
  return secret;
}
