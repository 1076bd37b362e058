import express, { type Request, type Response, type Router } from 'express';
import { InvalidTokenError, type Logger } from '@shop/common';
import { SESSION_COOKIE, sameOrigin, type TokenReader } from './auth.js';

const LOGIN = `mutation DashboardLogin($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}`;

interface LoginOptions {
  routerUrl: string;
  secureCookie: boolean;
  verify: TokenReader;
  log: Logger;
  /** Where an administrator lands after logging in. */
  home: string;
  /** How long the router may take to answer (scrypt on a busy machine takes a while). */
  timeoutMs?: number;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(message?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Queue dashboard: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}label,input,button{display:block;width:100%;margin:.3rem 0}p.error{color:#b00020}</style>
</head><body>
<h1>Queue dashboard</h1>
<p>Log in with a shop administrator's account.</p>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/login">
<label>Email <input name="email" type="email" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
</body></html>`;
}

function sendPage(res: Response, status: number, message?: string): void {
  res
    .status(status)
    .set({
      'cache-control': 'no-store',
      // The page runs no script and may not be framed (clickjacking).
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      'x-frame-options': 'DENY',
    })
    .type('html')
    .send(page(message));
}

interface LoginAnswer {
  data?: { login?: { token?: string } | null } | null;
  errors?: { message?: string; extensions?: { code?: string } }[];
}

/**
 * GET /login: the form. POST /login: asks the shop's `login` mutation at ROUTER_URL and, only for an administrator,
 * keeps the returned access token in the session cookie (HttpOnly, SameSite=Strict, Secure in production) until the
 * token expires. POST /logout clears it. Both posts must come from the dashboard's own origin.
 */
export function loginRoutes(options: LoginOptions): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb' });
  const cookie = (value: string, maxAgeSeconds: number) =>
    [
      `${SESSION_COOKIE}=${encodeURIComponent(value)}`,
      'Path=/',
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${maxAgeSeconds}`,
      ...(options.secureCookie ? ['Secure'] : []),
    ].join('; ');

  router.get('/login', (_req, res) => sendPage(res, 200));

  router.post('/login', form, async (req: Request, res: Response) => {
    if (!sameOrigin(req)) {
      sendPage(res, 403, 'Cross-site request refused: log in from this page.');
      return;
    }
    const { email, password } = (req.body ?? {}) as { email?: unknown; password?: unknown };
    if (typeof email !== 'string' || typeof password !== 'string' || email === '' || password === '') {
      sendPage(res, 400, 'Enter an email and a password.');
      return;
    }
    let answer: LoginAnswer;
    try {
      const response = await fetch(options.routerUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query: LOGIN, operationName: 'DashboardLogin', variables: { email, password } }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
      answer = (await response.json()) as LoginAnswer;
    } catch (error) {
      options.log.warn({ err: error, routerUrl: options.routerUrl }, 'login: the router did not answer');
      sendPage(res, 502, "The shop's router did not answer; try again later.");
      return;
    }
    const token = answer.data?.login?.token;
    if (!token) {
      const error = answer.errors?.[0];
      const code = error?.extensions?.code;
      // The router's own words for a wrong password or a throttled account; anything else stays in the log.
      if (code === 'UNAUTHENTICATED' || code === 'RATE_LIMITED') {
        sendPage(res, code === 'UNAUTHENTICATED' ? 401 : 429, error?.message ?? 'Log in failed.');
      } else {
        options.log.warn({ errors: answer.errors }, 'login: the router refused the login');
        sendPage(res, 502, 'Log in failed; see the dashboard log.');
      }
      return;
    }
    // Trusted only as far as it verifies here: the cookie holds a token this dashboard accepts, of an ADMIN.
    let verified: Awaited<ReturnType<TokenReader>>;
    try {
      verified = await options.verify(token);
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      options.log.warn({ reason: error.message }, 'login: the token the router returned does not verify here (JWT settings differ?)');
      sendPage(res, 502, 'Log in failed: the dashboard cannot verify the shop\u2019s tokens; see its log.');
      return;
    }
    if (verified.identity.role !== 'ADMIN') {
      sendPage(res, 403, 'Only an administrator can use the queue dashboard.');
      return;
    }
    const maxAge = Math.max(0, verified.exp - Math.floor(Date.now() / 1000));
    options.log.info({ userId: verified.identity.sub }, 'an administrator logged in to the queue dashboard');
    res.setHeader('set-cookie', cookie(token, maxAge));
    res.redirect(303, options.home);
  });

  router.post('/logout', (req, res) => {
    if (!sameOrigin(req)) {
      sendPage(res, 403, 'Cross-site request refused.');
      return;
    }
    res.setHeader('set-cookie', cookie('', 0));
    res.redirect(303, '/login');
  });

  return router;
}
