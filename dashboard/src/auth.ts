import type { NextFunction, Request, Response } from 'express';
import { InvalidTokenError, type Identity, type Logger } from '@shop/common';

/** The session cookie the login form sets: the administrator's access token, HttpOnly and SameSite=Strict. */
export const SESSION_COOKIE = 'shop_dashboard_token';

const BEARER = /^Bearer\s+(\S+)$/i;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** One cookie's value from the Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/**
 * Whether a state-changing request comes from a page of the dashboard itself: its Origin (or, failing that, its
 * Referer) must name the host the request was sent to. With the SameSite=Strict cookie this is the CSRF defence;
 * a request without either header is refused.
 */
export function sameOrigin(req: Request): boolean {
  const host = req.headers.host;
  const from = req.headers.origin ?? req.headers.referer;
  if (!host || !from || from === 'null') return false;
  try {
    return new URL(from).host === host;
  } catch {
    return false;
  }
}

export type TokenReader = (token: string) => Promise<{ identity: Identity; exp: number }>;

/** A page or JSON body saying why, with the status; browsers get a link to the login form. */
function refuse(req: Request, res: Response, status: 401 | 403, message: string): void {
  res.status(status).setHeader('cache-control', 'no-store');
  if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="shop-dashboard"');
  if (req.accepts(['json', 'html']) === 'html') {
    res.type('html').send(`<!doctype html><title>Queue dashboard</title><p>${message}</p><p><a href="/login">Log in</a></p>`);
  } else {
    res.json({ error: message });
  }
}

/**
 * Lets through administrators only, before any route that reaches a queue: `Authorization: Bearer <jwt>` or the
 * session cookie, verified as the router verifies access tokens. None or an invalid one: 401; another role: 403.
 * A state-changing request authenticated by the cookie must also come from the dashboard's own origin (CSRF).
 */
export function requireAdmin(verify: TokenReader, log: Logger) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const bearer = header === undefined ? undefined : BEARER.exec(header.trim())?.[1];
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const token = bearer ?? (header === undefined ? cookie : undefined);
    if (!token) {
      refuse(req, res, 401, header === undefined ? 'Log in as an administrator to use the queue dashboard.' : 'The Authorization header is not a Bearer token.');
      return;
    }
    let identity: Identity;
    try {
      identity = (await verify(token)).identity;
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      log.debug({ reason: error.message }, 'refused an access token');
      refuse(req, res, 401, 'The access token is invalid or has expired; log in again.');
      return;
    }
    if (identity.role !== 'ADMIN') {
      refuse(req, res, 403, 'Only an administrator can use the queue dashboard.');
      return;
    }
    // A browser attaches the cookie by itself; a bearer token it never sends unasked.
    if (bearer === undefined && !SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
      refuse(req, res, 403, 'Cross-site request refused: send it from the dashboard itself.');
      return;
    }
    next();
  };
}
