import { ConfigError } from './config.js';

/** Used when JWT_SECRET is unset outside production; public, so it protects nothing. */
export const DEV_JWT_SECRET = 'shop-dev-jwt-secret-not-for-production';

/** Used when IDENTITY_SECRET is unset outside production; public, so it protects nothing. */
export const DEV_IDENTITY_SECRET = 'shop-dev-identity-secret-not-for-production';

/**
 * Values anyone can read in this repository: the development defaults above and the placeholders of `.env.example`
 * (which all start with `change-me`). Any of them, in any variable, lets a stranger forge tokens or identities.
 */
const PUBLIC_SECRETS: ReadonlySet<string> = new Set([DEV_JWT_SECRET, DEV_IDENTITY_SECRET]);

/** Refuses, in production, a secret that is short or public; `name` is the variable it came from. */
export function checkProductionSecret(name: string, secret: string): void {
  if (secret.startsWith('change-me')) throw new ConfigError(`${name} still has the placeholder of .env.example; generate one with: openssl rand -base64 48`);
  if (PUBLIC_SECRETS.has(secret)) {
    throw new ConfigError(`${name} is a public development default written in the source; generate one with: openssl rand -base64 48`);
  }
  if (secret.length < 32) throw new ConfigError(`${name} must be at least 32 characters`);
}
