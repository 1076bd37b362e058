import { createPublicKey } from 'node:crypto';
import {
  SignJWT,
  createRemoteJWKSet,
  exportJWK,
  importPKCS8,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { ConfigError, readInt, readOptional, readString, readUrl } from './config.js';
import type { Identity, Role } from './identity.js';
import { DEV_JWT_SECRET, checkProductionSecret } from './secrets.js';

export { DEV_JWT_SECRET };

type Env = Readonly<Record<string, string | undefined>>;

/** How the users subgraph signs access tokens. */
export interface JwtIssuerConfig {
  /** HS256 key; used when no private key is set. */
  secret: string | undefined;
  /** PEM (PKCS#8) EC P-256 or RSA key: tokens are signed ES256 or RS256 and the public key is served as a JWKS. */
  privateKey: string | undefined;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/** How the router checks access tokens. */
export interface JwtVerifierConfig {
  secret: string | undefined;
  /** Where the users subgraph (or an identity provider) publishes its public keys. */
  jwksUrl: string | undefined;
  issuer: string;
  audience: string;
}

const claims = (env: Env) => ({
  issuer: readString(env, 'JWT_ISSUER', 'shop-users'),
  audience: readString(env, 'JWT_AUDIENCE', 'shop'),
});

function devSecret(env: Env, production: boolean): string | undefined {
  const secret = readOptional(env, 'JWT_SECRET');
  if (secret !== undefined) {
    if (production) checkProductionSecret('JWT_SECRET', secret);
    return secret;
  }
  if (production) return undefined;
  return DEV_JWT_SECRET;
}

export function readJwtIssuerConfig(env: Env, production: boolean): JwtIssuerConfig {
  const privateKey = readOptional(env, 'JWT_PRIVATE_KEY')?.replace(/\\n/g, '\n');
  const secret = privateKey ? undefined : devSecret(env, production);
  if (!privateKey && !secret) throw new ConfigError('JWT_SECRET or JWT_PRIVATE_KEY is required in production');
  return { secret, privateKey, ...claims(env), ttlSeconds: readInt(env, 'JWT_TTL_SECONDS', 3600, 60, 86_400) };
}

export function readJwtVerifierConfig(env: Env, production: boolean): JwtVerifierConfig {
  const jwksUrl = readUrl(env, 'JWT_JWKS_URL', ['http:', 'https:']);
  const secret = jwksUrl ? undefined : devSecret(env, production);
  if (!jwksUrl && !secret) throw new ConfigError('JWT_SECRET or JWT_JWKS_URL is required in production');
  return { secret, jwksUrl, ...claims(env) };
}

/** Signs access tokens: `sub` is the user id, `role` CUSTOMER or ADMIN. */
export class TokenIssuer {
  private constructor(
    private readonly config: JwtIssuerConfig,
    private readonly key: CryptoKey | Uint8Array,
    private readonly alg: string,
    /** The public key as a JWK, when signing asymmetrically. */
    readonly publicJwk: JWK | undefined,
  ) {}

  static async create(config: JwtIssuerConfig): Promise<TokenIssuer> {
    if (!config.privateKey) return new TokenIssuer(config, new TextEncoder().encode(config.secret), 'HS256', undefined);
    const type = createPublicKey(config.privateKey).asymmetricKeyType;
    const alg = type === 'ec' ? 'ES256' : type === 'rsa' ? 'RS256' : undefined;
    if (!alg) throw new ConfigError('JWT_PRIVATE_KEY must be an EC P-256 or RSA key');
    const key = await importPKCS8(config.privateKey, alg, { extractable: true });
    const publicJwk = await exportJWK(createPublicKey(config.privateKey));
    // The key id names this key in the JWKS, so a rotated key can be served beside the old one.
    const kid = `${alg.toLowerCase()}-${(publicJwk.x ?? publicJwk.n ?? '').slice(0, 16)}`;
    return new TokenIssuer(config, key, alg, { ...publicJwk, kid, alg, use: 'sig' });
  }

  /** The JSON of GET /.well-known/jwks.json: the public key, or no keys when tokens are HS256. */
  get jwks(): { keys: JWK[] } {
    return { keys: this.publicJwk ? [this.publicJwk] : [] };
  }

  async issue(userId: string, role: Exclude<Role, 'SERVICE'>): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + this.config.ttlSeconds;
    const token = await new SignJWT({ role })
      .setProtectedHeader({ alg: this.alg, ...(this.publicJwk?.kid ? { kid: this.publicJwk.kid } : {}) })
      .setSubject(userId)
      .setIssuer(this.config.issuer)
      .setAudience(this.config.audience)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(this.key);
    return { token, expiresAt: new Date(exp * 1000) };
  }
}

export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

/** A verified access token: whose it is, and when it stops being valid. */
export interface VerifiedToken {
  identity: Identity;
  /** The token's `exp` claim, in seconds since the epoch: valid while the clock reads less than `exp * 1000` ms. */
  exp: number;
}

/** Verifies access tokens (signature, issuer, audience, expiry, a user role) and returns whose they are and until when. */
export function createVerifiedTokenReader(config: JwtVerifierConfig): (token: string) => Promise<VerifiedToken> {
  const key: Uint8Array | JWTVerifyGetKey = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000 })
    : new TextEncoder().encode(config.secret);
  const algorithms = config.jwksUrl ? ['ES256', 'RS256'] : ['HS256'];
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms,
        requiredClaims: ['sub', 'exp'],
      });
      // A token can only carry a user's role; SERVICE is for subgraph-to-subgraph calls.
      if (payload.role !== 'CUSTOMER' && payload.role !== 'ADMIN') throw new InvalidTokenError('token has no user role');
      return { identity: { sub: payload.sub!, role: payload.role }, exp: payload.exp! };
    } catch (error) {
      if (error instanceof InvalidTokenError) throw error;
      throw new InvalidTokenError(error instanceof Error ? error.message : String(error));
    }
  };
}

/** Verifies access tokens (signature, issuer, audience, expiry, a user role) and returns whose they are. */
export function createTokenVerifier(config: JwtVerifierConfig): (token: string) => Promise<Identity> {
  const read = createVerifiedTokenReader(config);
  return async (token) => (await read(token)).identity;
}
