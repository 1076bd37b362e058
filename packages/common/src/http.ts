import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { currentLogContext, hasLogContext, runWithLogContext, type Logger } from './logger.js';
import { tracer, tracingEnabled } from './telemetry.js';

export const REQUEST_ID_HEADER = 'x-request-id';
const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Keeps a client's request id when it is sane, otherwise makes one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

export interface RequestInfo {
  req: IncomingMessage;
  requestId: string;
  log: Logger;
}

export interface GraphQLHttpOptions<TContext extends BaseContext> {
  path?: string;
  log: Logger;
  corsOrigins: readonly string[];
  /**
   * Also allow any `http(s)://localhost`, `127.0.0.1` or `[::1]` origin (development: local frontends on any port).
   * Never in production: any local page, or a site the user was tricked into serving locally, would get credentialed
   * access.
   */
  allowLocalOrigins?: boolean;
  bodyLimitBytes: number;
  context: (info: RequestInfo) => Promise<TContext>;
  /** Extra routes such as /health; return true when handled. */
  routes?: (req: IncomingMessage, res: ServerResponse, info: { requestId: string; log: Logger }) => boolean | Promise<boolean>;
  /**
   * Whether the request runs in an AsyncLocalStorage log context, so that every logger of the process adds its
   * request id, however deep (default true). False: only the request's own logger (`RequestInfo.log`, bound to the
   * id) does, and the process runs without Node's promise hooks, which cost the router about an eighth of its CPU
   * per request. With tracing on the context is kept all the same: the trace context needs those hooks anyway.
   */
  asyncLogContext?: boolean;
  /** Headers set on every GraphQL answer (a subgraph's `x-shop-entity-cache`, say). */
  responseHeaders?: Readonly<Record<string, string>>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      reject(new HttpError(413, `Request body is larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `Request body is larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

/** CORS headers for an allowed origin: a listed one, any with `*`, or a local one when `allowLocal`. */
export function applyCors(req: IncomingMessage, res: ServerResponse, origins: readonly string[], allowLocal = false): void {
  const origin = req.headers.origin;
  if (!origin) return;
  if (!origins.includes('*') && !origins.includes(origin) && !(allowLocal && LOCAL_ORIGIN.test(origin))) return;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('vary', 'origin');
  res.setHeader('access-control-allow-credentials', 'true');
  res.setHeader('access-control-expose-headers', REQUEST_ID_HEADER);
  if (req.method === 'OPTIONS') {
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    res.setHeader(
      'access-control-allow-headers',
      req.headers['access-control-request-headers'] ?? 'content-type, apollo-require-preflight, authorization',
    );
    res.setHeader('access-control-max-age', '600');
  }
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/**
 * Serves an Apollo Server on Node's http module: CORS for the allowed origins,
 * a body size limit, a request id echoed back and handed to the context.
 */
export function graphqlRequestListener<TContext extends BaseContext>(
  apollo: ApolloServer<TContext>,
  options: GraphQLHttpOptions<TContext>,
): (req: IncomingMessage, res: ServerResponse) => void {
  const path = options.path ?? '/graphql';
  const asyncContext = options.asyncLogContext !== false || tracingEnabled();
  return (req, res) => {
    const requestId = requestIdOf(req);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    // Loggers from createLogger add the request id from the log context themselves; others get a binding.
    const log = asyncContext && hasLogContext(options.log) ? options.log : options.log.child({ requestId });
    const run = () => {
      void handle(req, res, requestId, log).catch((error: unknown) => {
        log.error({ err: error }, 'request failed');
        if (!res.headersSent) sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
        else res.end();
      });
    };
    // Everything logged while handling the request, by any logger of the process, carries its id.
    if (asyncContext) runWithLogContext({ requestId }, run);
    else run();
  };

  /** A server span per GraphQL request, child of the caller's `traceparent` (the router's fetch span). */
  async function traced(req: IncomingMessage, res: ServerResponse, serve: () => Promise<void>): Promise<void> {
    if (!tracingEnabled()) return serve();
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const method = req.method ?? 'GET';
    const span = tracer().startSpan(
      `${method} ${path}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': method, 'http.route': path, 'url.path': path, 'server.port': req.socket.localPort ?? 0 },
      },
      parent,
    );
    const logContext = currentLogContext();
    if (logContext) logContext.traceId = span.spanContext().traceId;
    try {
      await context.with(trace.setSpan(parent, span), serve);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string, log: Logger): Promise<void> {
    applyCors(req, res, options.corsOrigins, options.allowLocalOrigins ?? false);
    if (options.routes && (await options.routes(req, res, { requestId, log }))) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) {
      sendError(res, 404, 'NOT_FOUND', `Not found: GraphQL is served at ${path}`);
      return;
    }
    if (req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.end();
      return;
    }
    await traced(req, res, () => serveGraphQL(req, res, url, requestId, log));
  }

  async function serveGraphQL(req: IncomingMessage, res: ServerResponse, url: URL, requestId: string, log: Logger): Promise<void> {
    const started = process.hrtime.bigint();
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    let body: unknown;
    if (req.method === 'POST') {
      let text: string;
      try {
        text = await readBody(req, options.bodyLimitBytes);
      } catch (error) {
        if (error instanceof HttpError) {
          sendError(res, error.status, 'PAYLOAD_TOO_LARGE', error.message);
          return;
        }
        throw error;
      }
      if (headers.get('content-type')?.includes('application/json')) {
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          sendError(res, 400, 'BAD_REQUEST', 'Request body is not valid JSON');
          return;
        }
      } else {
        body = text;
      }
    }
    const result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
      context: () => options.context({ req, requestId, log }),
    });
    for (const [key, value] of result.headers) res.setHeader(key, value);
    if (options.responseHeaders) for (const [key, value] of Object.entries(options.responseHeaders)) res.setHeader(key, value);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      res.end(result.body.string);
    } else {
      for await (const chunk of result.body.asyncIterator) res.write(chunk);
      res.end();
    }
    log.debug(
      { status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 },
      'graphql request',
    );
  }
}

/** Answers GET /health with 200 while the process runs. */
export function healthRoute(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' || req.url !== '/health') return false;
  res.setHeader('content-type', 'application/json');
  res.end('{"status":"ok"}');
  return true;
}

/** A dependency check for /ready: resolves when the dependency answers, throws when it does not. */
export type ReadinessCheck = () => Promise<unknown>;

/**
 * GET /health answers 200 while the process runs (liveness); GET /ready runs every check with a
 * deadline and answers 200 when all pass, 503 otherwise, naming each check's result (readiness).
 */
export function probeRoutes(checks: Record<string, ReadinessCheck>, timeoutMs = 2_000) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (healthRoute(req, res)) return true;
    if (req.method !== 'GET' || req.url !== '/ready') return false;
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
            }),
          ]);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, error instanceof Error ? error.message : 'failed'] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const ready = results.every(([, result]) => result === 'ok');
    res.statusCode = ready ? 200 : 503;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ status: ready ? 'ready' : 'unavailable', checks: Object.fromEntries(results) }));
    return true;
  };
}

export interface Listening {
  server: Server;
  url: string;
  port: number;
  /** Graceful stop: in-flight requests get up to `graceMs` to finish. */
  close(graceMs?: number): Promise<void>;
}

/** Listens and resolves with the bound address; port 0 picks a free port. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port: number,
  host: string,
  path = '/graphql',
): Promise<Listening> {
  const server = createServer({ keepAliveTimeout: 65_000 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return {
    server,
    port: address.port,
    url: `http://${shownHost}:${address.port}${path}`,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        // Stop accepting, let in-flight requests finish, and close keep-alive connections as they go
        // idle (clients such as undici would otherwise hold them for a minute). After the grace
        // period, whatever is still open is cut.
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
