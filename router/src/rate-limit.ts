import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { GraphQLError } from 'graphql';
import { HeaderMap } from '@apollo/server';
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

/** The client's address: the first `X-Forwarded-For` entry behind a trusted proxy, else the socket's peer. */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = req.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string' && forwarded.trim() !== '') return forwarded.split(',')[0]!.trim();
  return req.socket.remoteAddress ?? 'unknown';
}

/** A refusal: how long until the client may try again. */
export interface RateLimited {
  retryAfter: number;
  message: string;
}

/**
 * Counts one request (an HTTP request, a WebSocket connection, or an operation sent on one) of a client against its
 * sliding window in Redis, shared by every transport and every replica. Resolves with the refusal when the client is
 * over the limit, undefined when it may go on. When Redis cannot be asked, requests are let through (the outage is
 * logged): the limiter protects the graph, it must not take it down.
 */
export type RateLimitCheck = (client: string) => Promise<RateLimited | undefined>;

export function rateLimitCheck(options: Omit<RateLimitOptions, 'path' | 'trustProxy'>): RateLimitCheck {
  // One line when Redis goes and one when it is back, not one per request let through.
  const outage = new OutageLog(options.log, 'rate limit checks in Redis (requests let through meanwhile)');
  return async (client) => {
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
      return undefined;
    }
    outage.succeeded();
    if (allowed === 1) return undefined;
    const retryAfter = Math.max(1, Math.ceil(retryMs / 1000));
    return { retryAfter, message: `Too many requests: at most ${options.max} every ${options.windowMs / 1000} s. Retry in ${retryAfter} s.` };
  };
}

/** The refusal as a GraphQL error (graphql-ws operations, login throttling). */
export function rateLimitedError(limited: RateLimited, httpStatus?: number): GraphQLError {
  return new GraphQLError(limited.message, {
    extensions: {
      code: ErrorCode.RateLimited,
      retryAfter: limited.retryAfter,
      ...(httpStatus ? { http: { status: httpStatus, headers: new HeaderMap([['retry-after', String(limited.retryAfter)]]) } } : {}),
    },
  });
}

/** Over the limit over HTTP: 429 with `Retry-After` and a `RATE_LIMITED` error. */
export function sendRateLimited(res: ServerResponse, limited: RateLimited): void {
  res.statusCode = 429;
  res.setHeader('retry-after', String(limited.retryAfter));
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify({ errors: [{ message: limited.message, extensions: { code: ErrorCode.RateLimited, retryAfter: limited.retryAfter } }] }));
}

/** A route guard for the GraphQL path over HTTP (WebSocket upgrades are counted by the WebSocket endpoint). */
export function rateLimiter(options: RateLimitOptions & { check?: RateLimitCheck }) {
  const check = options.check ?? rateLimitCheck(options);
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method === 'OPTIONS' || !req.url?.startsWith(options.path)) return false;
    const limited = await check(clientAddress(req, options.trustProxy));
    if (!limited) return false;
    sendRateLimited(res, limited);
    return true;
  };
}
