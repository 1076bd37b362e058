/**
 * Typed environment parsing. Each process builds one config object at start-up
 * from these readers; a bad value fails fast with a message naming the variable.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function readString(env: Env, name: string, fallback?: string): string {
  const value = raw(env, name) ?? fallback;
  if (value === undefined) throw new ConfigError(`${name} is required`);
  return value;
}

export function readOptional(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function readInt(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${value}"`);
  }
  return n;
}

export function readPort(env: Env, name: string, fallback: number): number {
  return readInt(env, name, fallback, 0, 65535);
}

export function readBool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

export function readUrl(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${url.protocol}`);
  }
  return value;
}

export function readList(env: Env, name: string, fallback: readonly string[]): string[] {
  const value = raw(env, name);
  if (value === undefined) return [...fallback];
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function readLogLevel(env: Env, name = 'LOG_LEVEL', fallback: LogLevel = 'info'): LogLevel {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  }
  return value as LogLevel;
}

/** Settings every service shares. */
export interface ServiceConfig {
  production: boolean;
  host: string;
  port: number;
  logLevel: LogLevel;
  corsOrigins: string[];
  bodyLimitBytes: number;
}

/** Origins allowed by default in development: Apollo Sandbox and local pages. */
export const DEV_CORS_ORIGINS = ['https://studio.apollographql.com', 'https://sandbox.apollo.dev'];

export function readServiceConfig(env: Env, defaultPort: number): ServiceConfig {
  const production = readString(env, 'NODE_ENV', 'development') === 'production';
  return {
    production,
    host: readString(env, 'HOST', production ? '0.0.0.0' : '127.0.0.1'),
    port: readPort(env, 'PORT', defaultPort),
    logLevel: readLogLevel(env),
    corsOrigins: readList(env, 'CORS_ORIGINS', production ? [] : DEV_CORS_ORIGINS),
    bodyLimitBytes: readInt(env, 'BODY_LIMIT_BYTES', 1_000_000, 1024),
  };
}
