import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { ErrorCode, OutageLog, type Logger } from '@shop/common';

/**
 * Sliding-window log in a Redis sorted set per client: entries older than the
 * window are dropped, and a request is let in while fewer than `max` remain.
 * One script, so replicas never race each other; Redis's clock, so their
 * clocks need not agree. Returns [allowed, milliseconds until a slot frees].
 */
const SLIDING_WINDOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= max then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`;

export interface RateLimitOptions {
  redis: Redis;
  keyPrefix: string;
  /** Requests allowed per client in any window. */
  max: number;
  windowMs: number;
  /** Take the client address from X-Forwarded-For (only behind a proxy that sets it). */
  trustProxy: boolean;
  path: string;
  log: Logger;
}

function clientOf(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = req.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string' && forwarded.trim() !== '') return forwarded.split(',')[0]!.trim();
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * A route guard for the GraphQL path: over the limit, HTTP 429 with
 * `Retry-After` and a `RATE_LIMITED` error. When Redis cannot be asked, requests
 * are let through (the outage is logged): the limiter protects the graph, it must not take it down.
 */
export function rateLimiter(options: RateLimitOptions) {
  // One line when Redis goes and one when it is back, not one per request let through.
  const outage = new OutageLog(options.log, 'rate limit checks in Redis (requests let through meanwhile)');
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method === 'OPTIONS' || !req.url?.startsWith(options.path)) return false;
    const client = clientOf(req, options.trustProxy);
    let allowed: number;
    let retryMs: number;
    try {
      [allowed, retryMs] = (await options.redis.eval(
        SLIDING_WINDOW,
        1,
        `${options.keyPrefix}ratelimit:${client}`,
        options.windowMs,
        options.max,
        randomBytes(6).toString('hex'),
      )) as [number, number];
    } catch (error) {
      outage.failed(error);
      return false;
    }
    outage.succeeded();
    if (allowed === 1) return false;
    const retryAfter = Math.max(1, Math.ceil(retryMs / 1000));
    res.statusCode = 429;
    res.setHeader('retry-after', String(retryAfter));
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(
      JSON.stringify({
        errors: [
          {
            message: `Too many requests: at most ${options.max} every ${options.windowMs / 1000} s. Retry in ${retryAfter} s.`,
            extensions: { code: ErrorCode.RateLimited, retryAfter },
          },
        ],
      }),
    );
    return true;
  };
}
