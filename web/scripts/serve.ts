/**
 * Serves the production build (web/dist) as static files and passes /graphql (HTTP and WebSocket) on to the router,
 * so the app and its API share one origin (no CORS, and the session's token never goes to another host).
 *   npm run build -w @shop/web && npm start -w @shop/web    (PORT, default 8080; ROUTER_URL, default http://127.0.0.1:4000)
 * Behind a real reverse proxy (nginx, a CDN), serve dist/ there and route /graphql to the router instead.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** The app loads only its own files and talks only to its own origin (/graphql over HTTP and WebSocket). */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

export interface WebServerOptions {
  /** The built app (web/dist). */
  root: string;
  /** The router's base URL, e.g. http://127.0.0.1:4000. */
  routerUrl: string;
}

async function sendFile(res: ServerResponse, root: string, pathname: string): Promise<void> {
  let file = path.resolve(root, `.${decodeURIComponent(pathname)}`);
  // Nothing outside the build is served, whatever the path says.
  if (file !== root && !file.startsWith(`${root}${path.sep}`)) {
    res.writeHead(404).end();
    return;
  }
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) file = path.join(root, 'index.html');
  const body = await readFile(file);
  const hashed = file.includes(`${path.sep}assets${path.sep}`);
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    // Vite names assets by content hash; index.html must be fetched again to see a new build.
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  res.end(body);
}

function forwardedHeaders(req: IncomingMessage, router: URL): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = value;
  headers.host = router.host;
  // The client's own address (a client-sent X-Forwarded-For is replaced): the router reads it with TRUST_PROXY=true.
  headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  return headers;
}

/** The web server, not yet listening. */
export function createWebServer(options: WebServerOptions): Server {
  const root = path.resolve(options.root);
  const router = new URL(options.routerUrl);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/graphql') {
      const upstream = request(
        { host: router.hostname, port: router.port, method: req.method, path: req.url, headers: forwardedHeaders(req, router) },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          // Streamed as it comes: @defer answers arrive part by part.
          answer.pipe(res);
        },
      );
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end('{"errors":[{"message":"The API is unavailable.","extensions":{"code":"BAD_GATEWAY"}}]}');
        else res.destroy();
      });
      req.pipe(upstream);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    sendFile(res, root, url.pathname).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  // graphql-ws: the upgrade request goes to the router as it came, then bytes flow both ways.
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/graphql') {
      socket.destroy();
      return;
    }
    const upstream = connect(Number(router.port || 80), router.hostname, () => {
      const headers = forwardedHeaders(req, router);
      const lines = Object.entries(headers).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${name}: ${v}`));
      upstream.write(`${req.method ?? 'GET'} ${req.url ?? '/graphql'} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  return server;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? (process.env.NODE_ENV === 'production' ? '0.0.0.0' : '127.0.0.1');
  const root = fileURLToPath(new URL('../dist/', import.meta.url));
  const server = createWebServer({ root, routerUrl: process.env.ROUTER_URL ?? 'http://127.0.0.1:4000' });
  server.listen(port, host, () => process.stdout.write(`web app on http://${host === '0.0.0.0' ? 'localhost' : host}:${port}\n`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
